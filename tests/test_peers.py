"""benchmarks/peers.py: the harness's own parts (cost counting, the grey path, the shared LR), no third-party files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tinysr.data.folder import image_folder
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.metrics import PROTOCOLS
from tinysr.resize import imresize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # benchmark code, outside the package
from peers import (  # noqa: E402
    Peer, bicubic_peer, columns, esr_module, esr_name, from_json, luma_upscaler, macs_720p, main, markdown, measure,
    opencv_peer, timing_lr, tinysr_peers, to_json, torch_cost,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def espcn(d: int, s: int, scale: int) -> nn.Module:
    """The edge-SR authors' ESPCN layer plan (5x5 -> D, 3x3 -> S, 3x3 -> scale^2, shuffle), rebuilt here."""
    return nn.Sequential(nn.Conv2d(1, d, 5, padding=2), nn.Tanh(), nn.Conv2d(d, s, 3, padding=1), nn.Tanh(),
                         nn.Conv2d(s, scale * scale, 3, padding=1), nn.PixelShuffle(scale), nn.Sigmoid())


def test_torch_cost_espcn_d12_s18_x4():
    # issue 26's 4.9k reference: 4,882 parameters; MACs per LR pixel 25*12 + 9*12*18 + 9*18*16
    params, macs = torch_cost(espcn(12, 18, 4))
    assert (params, macs) == (4_882, 300 + 1_944 + 2_592)
    assert macs_720p(macs, 4) == 4_836 * 57_600  # 1280 x 720 / 16 LR pixels


def test_torch_cost_transposed_conv_and_prelu():
    # FSRCNN's tail: a 9x9 transposed conv scatters C_in * 81 * C_out MACs per LR pixel; PReLU slopes are parameters
    net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.PReLU(),
                        nn.ConvTranspose2d(4, 1, 9, stride=3, padding=3, output_padding=0))
    params, macs = torch_cost(net)
    assert params == (100 + 4) + 1 + (324 + 1)
    assert macs == 100 + 324


def test_torch_cost_refuses_a_strided_conv():
    with pytest.raises(ValueError, match="not linear"):
        torch_cost(nn.Conv2d(1, 2, 3, stride=2, padding=1))


@pytest.mark.parametrize("scale, lr_pixels", [(2, 230_400), (3, 102_400), (4, 57_600)])
def test_macs_720p_is_exact(scale, lr_pixels):
    assert macs_720p(1, scale) == lr_pixels


def test_esr_name_drops_the_scale():
    assert esr_name("eSR-CNN_s2_C2_D9_S3") == "eSR-CNN C2D9S3"
    assert esr_name("FSRCNN_s4_D56_S12_M4") == "FSRCNN D56S12M4"


def test_luma_upscaler_feeds_full_range_luma():
    seen = []

    def grey_net(grey):
        seen.append(grey.copy())
        return np.kron(grey, np.ones((2, 2)))

    lr = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    luma_upscaler(grey_net, 2)(lr)
    np.testing.assert_allclose(seen[0], [[0.299, 0.587, 0.114, 1.0]], atol=1e-6)  # Pillow's "L" weights, unrounded


def test_luma_upscaler_with_a_bicubic_net_is_bicubic(data_dir):
    lr = read_image(data_dir / "Set5" / "bird.png")[0][:40, :36]
    sr = luma_upscaler(lambda grey: imresize(grey, 3.0), 3)(lr)
    np.testing.assert_allclose(sr, imresize(lr.astype(np.float64), 3.0), atol=1e-9)


def test_luma_upscaler_checks_the_net_output_size():
    with pytest.raises(ValueError, match="grey net gave"):
        luma_upscaler(lambda grey: grey, 2)(np.zeros((4, 4, 3), np.uint8))


def test_measure_reads_the_same_lr_as_evaluate(data_dir, tmp_path):
    images = [(p.stem, read_image(p)[0]) for p in image_folder(data_dir / "Set5").hr_paths]
    peer = bicubic_peer(2)
    measure([peer], images, scale=2, column="Set5", dataset="Set5", degradation="bicubic", tmp=tmp_path)
    measure([peer], images[:2], scale=2, column="q50", dataset="Set5", degradation="bicubic+jpeg50", tmp=tmp_path)
    assert round(peer.psnr["Set5"], 3) == 33.682  # bicubic x2 Set5 under `standard` (models.json)
    direct = evaluate(bicubic_upscaler(2), images[:2], scale=2, protocol=PROTOCOLS["standard"],
                      degradation="bicubic+jpeg50")
    assert peer.psnr["q50"] == direct.mean["psnr"]


@pytest.mark.parametrize("scale, shape", [(2, (360, 640, 3)), (3, (240, 426, 3)), (4, (180, 320, 3))])
def test_timing_lr_is_a_720p_output(scale, shape):
    lr = timing_lr(np.zeros((100, 150, 3), np.uint8), scale)
    assert lr.shape == shape and lr.flags["C_CONTIGUOUS"]


def test_table_rows_by_parameters():
    rows = [Peer("b", 2, "x", 900, 10, None, psnr={"Set5": 36.0}), bicubic_peer(2)]
    rows[1].psnr["Set5"] = 33.68
    table = markdown(rows, scale=2, cols=columns(["Set5"], ["Set5"], [50]))
    lines = table.splitlines()
    assert lines[2] == "| model | params | MMACs/720p | ms e2e | ms net | Set5 | Set5 q50 | from |"
    assert lines[4].startswith("| bicubic | 0 | 0 | – | – | 33.68 | – |")
    assert lines[5] == "| b | 900 | 2 | – | – | 36.00 | – | x |"


def test_bad_paths_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(TinySRError, match="pnavarre/eSR"):
        esr_module(tmp_path)
    pb = tmp_path / "SRGAN_x4.pb"
    pb.write_bytes(b"")
    with pytest.raises(TinySRError, match="SRGAN_x4.pb"):
        opencv_peer(pb)
    assert main(["--esr", str(tmp_path), "--scales", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("peers.py: error: ") and err.count("\n") == 1


def test_tinysr_rows_count_like_models_json():
    net = {p.name: p for p in tinysr_peers(3)}["tiny-1k-x3"]
    assert (net.params, net.macs_per_lr_pixel) == (981, 25 * 6 + 9 * 6 * 6 + 9 * 6 * 9)  # 5x5 -> 6, 3x3 -> 6, 3x3 -> 9


def test_json_round_trip_merges_files(tmp_path):
    rows = [bicubic_peer(3), Peer("n", 3, "x", 4_882, 4_836, None, psnr={"Set5 q50": 28.1, "Set5": 30.5},
                                  ms={"e2e": 12.0})]
    rows[0].psnr.update({"Set5 q50": 28.0, "Set5": 30.4})
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"rows": to_json(rows)}))
    rows[1].ms, rows[1].psnr = {"e2e": 9.0, "net": 3.0}, {}
    second.write_text(json.dumps({"rows": to_json(rows[1:])}))
    back, cols = from_json([first, second])
    assert cols == ["Set5", "Set5 q50"]  # clean columns first
    assert [(p.name, p.params, p.macs_per_lr_pixel, p.ms, p.psnr) for p in back] == [
        ("bicubic", 0, 0, {}, {"Set5 q50": 28.0, "Set5": 30.4}),
        ("n", 4_882, 4_836, {"e2e": 9.0, "net": 3.0}, {"Set5 q50": 28.1, "Set5": 30.5})]
    first.write_text("{}")
    with pytest.raises(TinySRError, match="not a peers.py --json file"):
        from_json([first])
