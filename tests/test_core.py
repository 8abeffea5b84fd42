"""The core install (`pip install tinysr`, no extras): what runs there, and that it gives the full install's pixels.

`.ci/run` runs these twice: in the full `.[dev]` environment, where `TINYSR_PARITY_DIR` makes them write their
outputs, and then in a clean venv holding only `pip install .` and pytest (`-m core`, with `TINYSR_CORE_VENV=1`),
where they run again and compare with those outputs. Parity: within 1 grey level on at most 0.1 % of the values.
Without `TINYSR_PARITY_DIR` (a developer's run) they run the same jobs and check the outputs' shapes and models.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.core

MAX_LEVELS, MAX_FRACTION = 1, 1e-3
IN_CORE_VENV = os.environ.get("TINYSR_CORE_VENV") == "1"


def tinysr(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinysr", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_dir) -> Path:
    """A PNG (lossless) and a JPEG of quality 50 (lossy), both from Set14's baboon crop."""
    folder = tmp_path_factory.mktemp("core-in")
    rgb = Image.open(data_dir / "Set14" / "baboon.png").convert("RGB").crop((0, 0, 200, 160))
    rgb.save(folder / "photo.png")
    rgb.save(folder / "photo.jpg", quality=50)
    return folder


def compare_or_record(name: str, image: np.ndarray) -> None:
    """Write `image` under $TINYSR_PARITY_DIR (the full install's run) or compare with what is there (the core's)."""
    parity_dir = os.environ.get("TINYSR_PARITY_DIR")
    if not parity_dir:
        return
    path = Path(parity_dir) / f"{name}.npy"
    if not IN_CORE_VENV:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, image)
        return
    reference = np.load(path)
    assert reference.shape == image.shape, name
    diff = np.abs(reference.astype(int) - image.astype(int))
    assert diff.max() <= MAX_LEVELS and (diff > 0).mean() <= MAX_FRACTION, (name, diff.max(), (diff > 0).mean())


def test_the_core_venv_has_no_torch():
    """In the core venv torch, scipy, matplotlib and scikit-image are absent; in the full install this test has
    nothing to say (the other tests here still run in both)."""
    if not IN_CORE_VENV:
        pytest.skip("only meaningful in the core venv (.ci/run sets TINYSR_CORE_VENV=1 there)")
    for name in ("torch", "scipy", "matplotlib", "skimage"):
        assert importlib.util.find_spec(name) is None, name
    result = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True)
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


def test_a_job_of_a_missing_extra_is_one_line_naming_it(tmp_path):
    """In the core venv: export and train need torch; each says which extra brings it, in one line, exit 2."""
    if not IN_CORE_VENV:
        pytest.skip("only meaningful in the core venv (.ci/run sets TINYSR_CORE_VENV=1 there)")
    cases = {("export", "--model", "tiny-1k-x2", "--format", "onnx", tmp_path / "x.onnx"): "export",
             ("train", "--model", "tiny-1k-x2", "--train-data", tmp_path, "--out", tmp_path / "run"): "train"}
    for argv, extra in cases.items():
        result = tinysr(*argv)
        assert result.returncode == 2 and result.stderr == (
            f"tinysr: error: tinysr {argv[0]} needs the [{extra}] extra (torch is not installed): "
            f"pip install 'tinysr[{extra}]'\n"), result.stderr
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "run").exists()


def test_upscale_auto_of_a_png_and_a_jpeg(inputs, tmp_path):
    result = tinysr("upscale", "--model", "auto", inputs / "photo.png", inputs / "photo.jpg", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "photo.png: PNG (lossless) -> tiny-1k-x2" in result.stdout
    assert "photo.jpg: JPEG q~50 (lossy) -> tiny-1k-x2-jpeg-low" in result.stdout
    for name in ("photo.png", "photo.jpg"):
        sr = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        assert sr.shape == (320, 400, 3)
        compare_or_record(f"upscale-{name}", sr)


def test_api_runs_every_bundled_model_in_process(inputs):
    """`tinysr.upscale` on every bundled model, EDSR included (torch where installed, NumPy in the core venv)."""
    import tinysr
    from tinysr.pretrained import list_pretrained

    lr = np.asarray(Image.open(inputs / "photo.png"))[:40, :48]
    for name in list_pretrained():
        model = tinysr.load_model(name)
        sr = tinysr.upscale(lr, model)
        assert sr.shape == (40 * model.scale, 48 * model.scale, 3), name
        compare_or_record(f"api-{name}", sr)


def test_eval_with_a_bundled_model_and_bicubic(data_dir):
    for model in ("tiny-1k-x2", "bicubic"):
        result = tinysr("eval", "--model", model, "--data", data_dir / "Set5", "--scale", "2", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["model"].endswith(("tiny-1k-x2.safetensors", "bicubic")) and report["protocol"] == "standard"
        # float engines (torch, NumPy) differ in the last bits only: the mean PSNR agrees to 1e-3 dB
        compare_or_record(f"eval-{model}", np.array([round(report["mean"]["psnr"], 3)]))


def test_the_demo_runs(tmp_path):
    """The README's main job: `tinysr demo` (clean and JPEG upscaling of the bundled photos, figures by Pillow)."""
    result = tinysr("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    for name in ("comparison.png", "compressed.png", "report.md"):
        assert (tmp_path / "demo" / name).is_file(), name


def test_upscale_auto_of_a_clip(tmp_path):
    """A clip through `tinysr upscale --model auto` (the [video] extra: `.ci/core` installs it after measuring the
    core venv), encoded losslessly (FFV1) so that the decoded frames compare at parity."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=96x64:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", str(clip)], check=True, capture_output=True)
    result = tinysr("upscale", "--model", "auto", clip, "-o", tmp_path / "out.mkv", "--codec", "ffv1")
    assert result.returncode == 0, result.stderr
    assert "clip.mp4: video, model tiny-1k-x2-jpeg" in result.stdout
    raw = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(tmp_path / "out.mkv"), "-f",
                          "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 128, 192, 3)
    assert len(frames) == 10
    compare_or_record("upscale-clip", frames)
