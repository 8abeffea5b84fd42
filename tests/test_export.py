"""tinysr.export: ONNX (dynamic H/W, config in metadata) against torch, int8 QDQ, and `tinysr export`."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from tinysr.models.weights import save_weights
from tinysr.cli import main
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.export.onnx import export_onnx, onnx_session, onnx_window_fn, read_onnx_config
from tinysr.export.quantize import calibration_crops, quantize_onnx
from tinysr.infer.channels import upscale_with
from tinysr.models.window import to_image, to_tensor
from tinysr.metrics import psnr

from helpers import random_edsr

CONFIGS = [dict(n_blocks=0, n_feats=4, scale=2), dict(n_blocks=2, n_feats=16, scale=4, res_scale=0.1)]


@pytest.fixture(scope="module")
def lr_images(data_dir) -> list[np.ndarray]:
    return [read_image(data_dir / "Set14" / f"{name}.png")[0][:96, :128] for name in ("baboon", "lenna", "zebra")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['n_blocks']}b-x{c['scale']}")
def test_onnx_matches_torch_at_two_sizes(config, lr_images, tmp_path):
    model = random_edsr(std=0.05, **config)
    export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert read_onnx_config(tmp_path / "m.onnx") == json.loads(json.dumps(config | {
        "res_scale": config.get("res_scale", 1.0), "n_colors": 3, "rgb_range": 255.0, "family": "edsr"}))
    run = onnx_window_fn(onnx_session(tmp_path / "m.onnx"))
    for img in (lr_images[0], lr_images[1][:37, :53]):  # dynamic height and width
        with torch.no_grad():
            ref = to_image(model(to_tensor(img)))
        out = run(img)
        assert out.shape == ref.shape == (img.shape[0] * config["scale"], img.shape[1] * config["scale"], 3)
        assert np.abs(out - ref).max() < 1e-3  # float32 on 0..255, different conv kernels


def test_int8_is_qdq_and_close_to_float(lr_images, tmp_path):
    model = random_edsr(std=0.05, **CONFIGS[0])
    export_onnx(model, tmp_path / "m.onnx")
    crops = calibration_crops(lr_images, rng=np.random.default_rng(0), size=48, per_image=2)
    assert len(crops) == 6 and all(c.shape == (48, 48, 3) for c in crops)
    quantize_onnx(tmp_path / "m.onnx", tmp_path / "m8.onnx", crops=crops)
    proto = onnx.load(str(tmp_path / "m8.onnx"))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 4 and "QuantizeLinear" in ops and "DequantizeLinear" in ops
    int8_weights = [t.name for t in proto.graph.initializer
                    if t.data_type == onnx.TensorProto.INT8 and not t.name.endswith("zero_point")]
    assert len(int8_weights) == 4 and all("weight" in name for name in int8_weights)  # one per conv
    assert read_onnx_config(tmp_path / "m8.onnx")["n_feats"] == 4
    img = lr_images[2]
    float_sr = upscale_with(onnx_window_fn(onnx_session(tmp_path / "m.onnx")), img, scale=2, tile=None, overlap=0)
    int8_sr = upscale_with(onnx_window_fn(onnx_session(tmp_path / "m8.onnx")), img, scale=2, tile=None, overlap=0)
    agreement = psnr(int8_sr.astype(np.float64), float_sr.astype(np.float64))
    assert 25 < agreement < 60, agreement  # close, but not the float graph


def test_int8_of_the_bundled_tiny_net(lr_images, tmp_path):
    """A Y-only tiny net's graph (its bicubic anchor as Gather/Slice/Mul/Add, no Resize) quantises, and stays close
    to the float graph; ORT's symbolic shape pass (which gave up on an earlier Resize anchor) is not needed."""
    from tinysr.infer.load import load_network

    model = load_network("tiny-1k-x2", scale=2)[0].to_torch()
    export_onnx(model, tmp_path / "t.onnx")
    crops = calibration_crops(lr_images, rng=np.random.default_rng(0), size=48, per_image=2)
    quantize_onnx(tmp_path / "t.onnx", tmp_path / "t8.onnx", crops=crops)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "t8.onnx")).graph.node]
    assert ops.count("Conv") == 4 and "Resize" not in ops and "QuantizeLinear" in ops  # the 4-conv 940-param net
    img = lr_images[2]
    float_sr = upscale_with(onnx_window_fn(onnx_session(tmp_path / "t.onnx")), img, scale=2, tile=None, overlap=0)
    int8_sr = upscale_with(onnx_window_fn(onnx_session(tmp_path / "t8.onnx")), img, scale=2, tile=None, overlap=0)
    agreement = psnr(int8_sr.astype(np.float64), float_sr.astype(np.float64))
    assert 35 < agreement < 60, agreement  # measured 41.5 dB


def test_export_leaves_the_global_rng_alone(tmp_path):
    model = random_edsr(std=0.05, **CONFIGS[0])
    torch.manual_seed(7)
    export_onnx(model, tmp_path / "m.onnx")
    after_export = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after_export, torch.rand(3))


def test_export_errors(tmp_path):
    model = random_edsr(std=0.05, **CONFIGS[0])
    with pytest.raises(TinySRError, match="--opset must be >= 17"):
        export_onnx(model, tmp_path / "m.onnx", opset=13)
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(TinySRError, match="junk.onnx"):
        read_onnx_config(tmp_path / "junk.onnx")
    with pytest.raises(TinySRError, match="no such ONNX file"):
        onnx_session(tmp_path / "missing.onnx")
    with pytest.raises(TinySRError, match="at least one calibration image"):
        quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", crops=[])


@pytest.fixture()
def weights(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_weights(path, random_edsr(std=0.05, **CONFIGS[0]))
    return path


def test_cli_export_all_formats(weights, tmp_path, data_dir, capsys):
    assert main(["export", "--model", str(weights), "--format", "onnx", str(tmp_path / "a.onnx")]) == 0
    assert main(["export", "--model", str(weights), "--format", "numpy", str(tmp_path / "a.npz")]) == 0
    assert main(["export", "--model", str(weights), "--format", "onnx-int8", "--calibration",
                 str(data_dir / "Set5"), str(tmp_path / "a8.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_onnx_config(tmp_path / "a8.onnx")["scale"] == 2
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert json.loads(str(data["tinysr_config"]))["n_feats"] == 4


@pytest.mark.parametrize(("extra", "message"), [
    (["--format", "onnx", "EXISTING"], "exists; pass --force"),
    (["--format", "onnx-int8", "NEW"], "needs --calibration"),
    (["--format", "onnx", "--scale", "3", "NEW"], "model is x2, but x3"),
    (["--format", "onnx", "NOFOLDER/x.onnx"], "no such folder"),
])
def test_cli_export_one_line_errors(weights, tmp_path, capsys, extra, message):
    (tmp_path / "existing.onnx").write_bytes(b"x")
    paths = {"EXISTING": tmp_path / "existing.onnx", "NEW": tmp_path / "new.onnx",
             "NOFOLDER/x.onnx": tmp_path / "nofolder" / "x.onnx"}
    argv = ["export", "--model", str(weights)] + [str(paths.get(a, a)) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinysr: error: ") and message in err and "\n" not in err


def test_a_damaged_or_truncated_onnx_file_is_one_line(tmp_path):
    model = random_edsr(std=0.05, **CONFIGS[0])
    export_onnx(model, tmp_path / "m.onnx")
    onnx_session(tmp_path / "m.onnx")
    data = bytearray((tmp_path / "m.onnx").read_bytes())
    weight = model.state_dict()["head.weight"].numpy().astype(np.float32).tobytes()[:8]
    data[bytes(data).find(weight)] ^= 0x01  # one weight's last bit: protobuf still parses it
    (tmp_path / "flipped.onnx").write_bytes(bytes(data))
    with pytest.raises(TinySRError, match=r"flipped\.onnx: content does not match its recorded sha256"):
        onnx_session(tmp_path / "flipped.onnx")
    (tmp_path / "cut.onnx").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(TinySRError, match=r"cut\.onnx: not a readable ONNX file"):
        onnx_session(tmp_path / "cut.onnx")
