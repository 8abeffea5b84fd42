"""The demo: embedded photos, a short training run through `tinysr.train.loop`, its report and figure."""

import json

import numpy as np
import pytest
from PIL import Image

from tinysr.errors import TinySRError
from tinysr.experiments import compressed, demo
from tinysr.models.weights import load_model
from tinysr.models import count_params


pytestmark = pytest.mark.usefixtures("one_thread")


def test_embedded_photos_are_rgb_uint8():
    shapes = {name: img.shape for name, img in demo.embedded_photos()}
    assert shapes == {"astronaut": (512, 512, 3), "chelsea": (300, 451, 3), "coffee": (400, 600, 3),
                      "rocket": (427, 640, 3), "immunohistochemistry": (512, 512, 3), "motorcycle": (500, 741, 3)}
    assert all(img.dtype == np.uint8 for _, img in demo.embedded_photos(("chelsea",)))


def test_busiest_crop_finds_the_texture():
    img = np.full((128, 160, 3), 100, np.uint8)
    img[64:96, 96:128] = np.random.default_rng(0).integers(0, 255, (32, 32, 3))
    assert compressed.busiest_crop(img, 32) == (64, 96)


def test_short_demo_writes_a_run_report_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.run_demo(out=out, steps=20, progress=False) == 0
    model, meta = load_model(out / "run" / "best.safetensors")
    assert count_params(model) == 963 and meta["protocol"] == "study"
    assert json.loads((out / "run" / "status.json").read_text())["state"] == "finished"
    assert json.loads((out / "run" / "config.json").read_text())["data"]["val"] == "skimage.data:chelsea"
    report = (out / "report.md").read_text()
    assert report.startswith("# tinysr demo: 963-parameter EDSR vs bicubic, x2")
    assert "| standard |" in report and "| study |" in report and "![crops](comparison.png)" in report
    assert "| study | 33.89 dB / " in report  # bicubic on the held-out chelsea (RGB, no crop), pinned
    assert Image.open(out / "comparison.png").size == (900, 340)
    assert "| study | 33.89 dB" in capsys.readouterr().out
    assert "## Compressed input: chelsea sent as a JPEG of quality 40 at x2" in report
    rows = {line.split(" | ")[0][2:]: line for line in report.splitlines() if line.startswith("| tiny-1k-x2")}
    assert set(rows) == {"tiny-1k-x2", "tiny-1k-x2-jpeg-low"} and Image.open(out / "compressed.png").size[0] > 900


def test_the_compressed_comparison_shows_the_jpeg_aware_model_ahead(data_dir):
    """On a JPEG of quality 40 the clean net sharpens the blocks; the JPEG-aware net `auto` picks for q40 (the
    low band's) is ahead of it (pinned)."""
    from tinysr.data.io import read_image

    hr, srs, scores = compressed.compare(read_image(data_dir / "Set5" / "butterfly.png")[0])
    assert set(srs) == {"bicubic", "tiny-1k-x2", "tiny-1k-x2-jpeg-low"}
    assert all(sr.shape == hr.shape for sr in srs.values())
    assert {name: round(psnr, 2) for name, psnr in scores.items()} == {
        "bicubic": 24.99, "tiny-1k-x2": 25.01, "tiny-1k-x2-jpeg-low": 27.14}  # +2.15 dB; the clean net gains 0.02


def test_demo_never_overwrites_a_non_empty_out_without_force(tmp_path):
    out = tmp_path / "demo-out"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(TinySRError, match=r"demo-out: exists and is not empty; pass --force"):
        demo.run_demo(out=out, steps=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
