"""`tinysr encode` (tinysr.delivery.encode): fits the budget, picks the best scale, and `upscale --model auto` gets
back the original size at exactly the PSNR encode reported; bad budgets and bad records fail on one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from tinysr.cli import main
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.delivery.auto import upscale_file
from tinysr.delivery.encode import compress, encode_file, encode_image, fit_quality, make_lr, receiver_psnr
from tinysr.delivery.record import Record, save_options

pytestmark = pytest.mark.usefixtures("one_thread")

HR = np.ascontiguousarray(skdata.astronaut()[100:227, 150:275])  # 127 x 125: a multiple of no scale but 1


def test_make_lr_pads_to_a_multiple_of_the_scale():
    assert make_lr(HR, 1) is HR
    assert [make_lr(HR, s).shape for s in (2, 3, 4)] == [(64, 63, 3), (43, 42, 3), (32, 32, 3)]


def test_fit_quality_is_the_highest_quality_that_fits():
    record = Record(2, 125, 127)
    lr = make_lr(HR, 2)
    quality, data = fit_quality(lr, codec="jpeg", budget=2500, record=record)
    assert len(data) <= 2500 < len(compress(lr, codec="jpeg", quality=quality + 1, record=record))
    assert fit_quality(lr, codec="jpeg", budget=100, record=record) is None


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_best_candidate_fits_and_wins(codec):
    best, found = encode_image(HR, budget=2500, codec=codec)
    assert len(best.data) <= 2500 and best.psnr == max(c.psnr for c in found)
    assert sorted(c.scale for c in found) == [1, 2, 3, 4] and 20 < best.psnr < 45


def test_round_trip_through_the_cli(tmp_path, capsys):
    Image.fromarray(HR).save(tmp_path / "photo.png")
    assert main(["encode", str(tmp_path / "photo.png"), "--budget", "1200", "-o", str(tmp_path / "sent.jpg")]) == 0
    best, found = encode_image(HR, budget=1200)
    assert f"x{best.scale} q{best.quality}, receiver PSNR-Y {best.psnr:.2f} dB" in capsys.readouterr().out
    assert (tmp_path / "sent.jpg").read_bytes() == best.data and len(best.data) <= 1200
    assert best.scale == 2 and 1 in {c.scale for c in found}  # at 0.6 bpp x2 beats full size (JPEG q5) here
    assert main(["upscale", "--model", "auto", str(tmp_path / "sent.jpg"), "-o", str(tmp_path / "out")]) == 0
    assert f"tinysr:scale={best.scale};size=125x127 -> {best.model}" in capsys.readouterr().out
    assert read_image(tmp_path / "out" / "sent.jpg")[0].shape == HR.shape
    # the CLI writes .jpg out at quality 95 (write_image), so the exact PSNR is checked on the pixels it wrote
    received = upscale_file(tmp_path / "sent.jpg")
    assert received.model == best.model and received.image.shape == HR.shape
    assert receiver_psnr(received.image, HR) == pytest.approx(best.psnr, abs=0.01)


def test_round_trip_for_an_auto_5k_receiver(tmp_path):
    """--receiver auto-5k judges the candidates with the <= 5k nets, and `upscale_file(family="auto-5k")` gets the
    PSNR it reported."""
    Image.fromarray(HR).save(tmp_path / "photo.png")
    best, found = encode_file(tmp_path / "photo.png", tmp_path / "sent.jpg", budget=1200, receiver="auto-5k")
    assert best.model.startswith("tiny-5k-x2") and best.scale == 2 and len(best.data) <= 1200
    small = {c.scale: c.psnr for c in encode_image(HR, budget=1200)[1]}
    assert best.psnr > small[2]  # the 5k receiver does better than the 1k one on the same x2 file
    received = upscale_file(tmp_path / "sent.jpg", family="auto-5k")
    assert received.model == best.model and receiver_psnr(received.image, HR) == pytest.approx(best.psnr, abs=0.01)


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinysr", *argv], capture_output=True, text=True, timeout=120,
                          check=False)


def test_budget_too_small_is_one_line_and_writes_nothing(tmp_path):
    Image.fromarray(HR).save(tmp_path / "photo.png")
    done = run_cli("encode", str(tmp_path / "photo.png"), "--budget", "300", "-o", str(tmp_path / "sent.jpg"))
    assert done.returncode != 0 and not (tmp_path / "sent.jpg").exists()
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("tinysr: error: --budget 300: the smallest candidate is ")
    assert done.stderr.rstrip().endswith("bytes (x4, q1)")


def test_auto_ignores_a_recorded_scale_without_a_model_and_still_upscales(tmp_path):
    Image.fromarray(HR).save(tmp_path / "r.jpg", quality=80, **save_options("JPEG", Record(8, 1000, 1016)))
    done = run_cli("upscale", "--model", "auto", str(tmp_path / "r.jpg"), "-o", str(tmp_path / "out"))
    assert done.returncode == 0 and np.asarray(Image.open(tmp_path / "out" / "r.jpg")).shape == (254, 250, 3)
    assert done.stderr == (f"tinysr: warning: {tmp_path / 'r.jpg'}: record ignored (tinysr:scale=8;size=1000x1016: "
                           "scale x8 is not one of x1, x2, x3, x4); upscaled as a file without one\n")


def test_encode_writes_into_a_new_folder_and_refuses_one_under_a_file(tmp_path):
    Image.fromarray(HR).save(tmp_path / "photo.png")
    best, _ = encode_file(tmp_path / "photo.png", tmp_path / "a" / "b" / "sent.jpg", budget=5000)
    assert (tmp_path / "a" / "b" / "sent.jpg").read_bytes() == best.data
    (tmp_path / "file").write_text("x")
    with pytest.raises(TinySRError, match=r"sent.jpg: .*file is a file, not a folder$"):
        encode_file(tmp_path / "photo.png", tmp_path / "file" / "sent.jpg", budget=5000)


@pytest.mark.parametrize("side, ok", [(8, False), (9, True)])
def test_the_smallest_image_encode_takes_has_pixels_inside_the_border(side, ok):
    hr = np.ascontiguousarray(HR[:side, :side])
    if ok:
        best, _ = encode_image(hr, budget=5000)
        assert best.scale == 1 and best.psnr > 40  # one pixel inside the border (here exact: inf dB)
    else:
        with pytest.raises(TinySRError, match=r"^the image: 8x8 pixels is too small to encode: .* at least 9 pixels$"):
            encode_image(hr, budget=5000)


def test_suffix_must_match_the_codec(tmp_path):
    Image.fromarray(HR).save(tmp_path / "photo.png")
    with pytest.raises(TinySRError, match=r"sent.jpg: --codec webp writes .webp"):
        encode_file(tmp_path / "photo.png", tmp_path / "sent.jpg", budget=5000, codec="webp")
    assert not (tmp_path / "sent.jpg").exists()
