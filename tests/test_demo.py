"""The demos: `tinysr demo` on the core install (`tinysr.showcase`, the embedded photos `tinysr.photos`) and
`tinysr demo --train` (`tinysr.experiments.demo`, a short training run through `tinysr.train.loop`)."""

import json
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO

import numpy as np
import pytest
from PIL import Image

from tinysr.cli import main
from tinysr.data.degrade import degrade, mod_crop
from tinysr.data.io import read_image
from tinysr.delivery.auto import inspect_source
from tinysr.errors import TinySRError
from tinysr.photos import PHOTOS, PHOTOS_DIR, load_photo, photo_path
from tinysr.showcase import demo as showcase
from tinysr.showcase import figure

pytestmark = pytest.mark.usefixtures("one_thread")

#: what the core demo must never import (they belong to the [train] extra)
TRAINING_STACK = ("torch", "scipy", "matplotlib", "skimage")


# ---------------------------------------------------------------------------------------------- embedded photos


def test_the_embedded_photos_are_small_clean_rgb_crops_with_their_licences():
    assert {name: load_photo(name).shape for name in PHOTOS} == {
        "chelsea": (176, 240, 3), "coffee": (160, 224, 3), "astronaut": (144, 176, 3)}
    assert all(load_photo(name).dtype == np.uint8 for name in PHOTOS)
    assert sum(photo_path(name).stat().st_size for name in PHOTOS) < 200_000  # 196,559 bytes
    readme = (PHOTOS_DIR / "README.md").read_text()
    for photo in PHOTOS.values():
        assert f"`{photo.file}`" in readme and photo.source.split("[")[1].rstrip("]") in readme
    assert "| CC0 |" in readme and "public domain" in readme


def test_the_embedded_photos_are_exact_crops_of_scikit_images():
    from skimage import data  # the [train] extra; the source of the files

    for name, photo in PHOTOS.items():
        rows, cols = (slice(*map(int, part.split(":"))) for part in photo.source.split("[")[1][:-1].split(", "))
        assert np.array_equal(load_photo(name), getattr(data, name)()[rows, cols, :3]), name


def test_an_unknown_photo_is_one_line():
    with pytest.raises(TinySRError, match=r"no embedded photo 'lena': choose chelsea, coffee, astronaut"):
        photo_path("lena")


# ---------------------------------------------------------------------------------------------- the core demo


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """One run of the core demo, through the CLI: (OUT, what it printed, what it measured)."""
    out = tmp_path_factory.mktemp("core") / "demo-out"
    printed = StringIO()
    with redirect_stdout(printed):
        assert main(["demo", "--out", str(out)]) == 0
    return out, printed.getvalue(), showcase.run_showcase(out=out, force=True)


def test_the_core_demo_pins_its_psnr_clean_and_jpeg(shown):
    """PSNR-Y (standard) at x2; the bundled nets never saw these photos. Clean: both nets ahead of bicubic on every
    photo. JPEG q40: the clean net sharpens the blocks (behind bicubic); auto's low-band nets are ahead on coffee
    and astronaut, and tie bicubic on the soft cat."""
    _, _, result = shown
    rounded = {case: {u: {p: round(v, 2) for p, v in row.items()} for u, row in table.items()}
               for case, table in result.psnr.items()}
    assert rounded == {
        "clean": {"bicubic": {"chelsea": 33.10, "coffee": 29.87, "astronaut": 32.29},
                  "tiny-1k-x2": {"chelsea": 33.83, "coffee": 31.70, "astronaut": 34.28},
                  "tiny-5k-x2": {"chelsea": 33.95, "coffee": 32.13, "astronaut": 34.61}},
        "compressed": {"bicubic": {"chelsea": 30.36, "coffee": 27.73, "astronaut": 29.11},
                       "tiny-1k-x2": {"chelsea": 30.00, "coffee": 27.62, "astronaut": 28.77},
                       "auto": {"chelsea": 30.31, "coffee": 28.14, "astronaut": 29.71},
                       "auto-5k": {"chelsea": 30.29, "coffee": 28.31, "astronaut": 29.90}}}
    assert result.picks == {"auto": dict.fromkeys(PHOTOS, "tiny-1k-x2-jpeg-low"),
                            "auto-5k": dict.fromkeys(PHOTOS, "tiny-5k-x2-jpeg-low")}


def test_the_core_demo_writes_its_report_figures_and_sent_files(shown):
    out, printed, result = shown
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "comparison.png", "compressed.png", "report.md", "sent", "sent/astronaut-x2-q40.jpg",
        "sent/chelsea-x2-q40.jpg", "sent/coffee-x2-q40.jpg"]
    assert sorted(result.files) == sorted(p for p in out.rglob("*") if p.is_file())
    # a row of 96-pixel crops at 2x per photo: 4 panels clean (3 upscalers + HR), 5 on the JPEG
    assert Image.open(out / "comparison.png").size == (4 * 192 + 5 * 8, 3 * (28 + 192 + 56))
    assert Image.open(out / "compressed.png").size == (5 * 192 + 6 * 8, 3 * (28 + 192 + 56))
    report = (out / "report.md").read_text()
    assert report == result.report and report.startswith("# tinysr demo: x2 on 3 embedded photos")
    assert "protocol standard: Y (MATLAB rgb2ycbcr, BT.601), 2-pixel border crop" in report
    assert "| tiny-5k-x2 | 33.95 | 32.13 | 34.61 | 33.56 | +1.81 |" in report
    assert "| auto: tiny-1k-x2-jpeg-low | 30.31 | 28.14 | 29.71 | 29.39 | +0.32 |" in report
    assert "![clean](comparison.png)" in report and "![compressed](compressed.png)" in report
    assert "| auto-5k: tiny-5k-x2-jpeg-low | 30.29 | 28.31 | 29.90 | 29.50 | +0.43 |" in printed
    assert f"figure: {out / 'compressed.png'}" in printed and "![" not in printed


def test_the_sent_jpeg_is_the_projects_degradation_and_auto_reads_its_quality(shown):
    out, _, _ = shown
    sent = out / "sent" / "coffee-x2-q40.jpg"
    info = inspect_source(sent)
    assert (info.format, info.lossy, info.quality) == ("JPEG", True, 40)
    expected = degrade(mod_crop(load_photo("coffee"), 2), 2, "bicubic+jpeg40")
    assert np.array_equal(read_image(sent)[0], expected)


def test_busiest_crop_finds_the_texture():
    img = np.full((128, 160, 3), 100, np.uint8)
    img[64:96, 96:128] = np.random.default_rng(0).integers(0, 255, (32, 32, 3))
    assert figure.busiest_crop(img, 32) == (64, 96)


def run_core_demo_without(modules: tuple[str, ...], out) -> subprocess.CompletedProcess:
    """The core demo in a fresh interpreter where importing any of `modules` fails, as on an install without them
    (an optional import that falls back, as Numba's of SciPy, still works)."""
    code = (f"import sys; sys.modules.update(dict.fromkeys({modules!r})); "
            "from tinysr.showcase.demo import run_showcase; run_showcase(out=sys.argv[1])")
    return subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300)


def test_the_core_demo_runs_without_scipy_matplotlib_or_scikit_image(tmp_path):
    result = run_core_demo_without(("scipy", "matplotlib", "skimage"), tmp_path / "demo-out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo-out" / "compressed.png").is_file()


def test_the_core_demo_runs_without_torch(tmp_path):
    """Needs the torch-free engine of issue 24 (`tinysr.infer.network`, `infer.weights`: `tinysr.load_model` and
    `tinysr.upscale` without torch); the test above does not."""
    result = run_core_demo_without(TRAINING_STACK, tmp_path / "demo-out")
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_the_core_demo_never_overwrites_a_non_empty_out_without_force(tmp_path, capsys):
    out = tmp_path / "demo-out"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    assert main(["demo", "--out", str(out)]) == 2
    assert "demo-out: exists and is not empty; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(TinySRError, match=r"a-file: exists and is not a folder"):
        showcase.run_showcase(out=tmp_path / "a-file", force=True)


def test_steps_without_train_is_a_usage_error(tmp_path, capsys):
    assert main(["demo", "--steps", "5", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == ("tinysr: error: --steps: the demo trains only with --train "
                                       "(tinysr demo --train --steps N)\n")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- demo --train


@pytest.fixture
def training():
    """`tinysr.experiments` (torch, matplotlib, scikit-image: the [train] extra), imported by the tests that train,
    so that the core tests above need none of it."""
    from tinysr.experiments import compressed, demo

    return compressed, demo


def test_demo_train_without_torch_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from tinysr.cli import main; "
            "sys.exit(main(['demo', '--train', '--steps', '2', '--out', sys.argv[1]]))")
    out = tmp_path / "demo-out"
    result = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("tinysr: error: demo --train needs the [train] extra (torch is not installed): "
                             "pip install 'tinysr[train]'\n")
    assert not out.exists()


def test_embedded_photos_are_rgb_uint8(training):
    _, demo = training
    shapes = {name: img.shape for name, img in demo.embedded_photos()}
    assert shapes == {"astronaut": (512, 512, 3), "chelsea": (300, 451, 3), "coffee": (400, 600, 3),
                      "rocket": (427, 640, 3), "immunohistochemistry": (512, 512, 3), "motorcycle": (500, 741, 3)}
    assert all(img.dtype == np.uint8 for _, img in demo.embedded_photos(("chelsea",)))


def test_short_demo_writes_a_run_report_and_figure(tmp_path, capsys, training):
    from tinysr.models import count_params
    from tinysr.models.weights import load_model

    out = tmp_path / "demo"
    assert main(["demo", "--train", "--steps", "20", "--out", str(out)]) == 0
    model, meta = load_model(out / "run" / "best.safetensors")
    assert count_params(model) == 963 and meta["protocol"] == "study"
    assert json.loads((out / "run" / "status.json").read_text())["state"] == "finished"
    assert json.loads((out / "run" / "config.json").read_text())["data"]["val"] == "skimage.data:chelsea"
    report = (out / "report.md").read_text()
    assert report.startswith("# tinysr demo: 963-parameter EDSR vs bicubic, x2")
    assert f"Command: `tinysr demo --train --steps 20 --out {out}`" in report
    assert "| standard |" in report and "| study |" in report and "![crops](comparison.png)" in report
    assert "| study | 33.89 dB / " in report  # bicubic on the held-out chelsea (RGB, no crop), pinned
    assert Image.open(out / "comparison.png").size == (900, 340)
    assert "| study | 33.89 dB" in capsys.readouterr().out
    assert "## Compressed input: chelsea sent as a JPEG of quality 40 at x2" in report
    rows = {line.split(" | ")[0][2:]: line for line in report.splitlines() if line.startswith("| tiny-1k-x2")}
    assert set(rows) == {"tiny-1k-x2", "tiny-1k-x2-jpeg-low"} and Image.open(out / "compressed.png").size[0] > 900


def test_the_compressed_comparison_shows_the_jpeg_aware_model_ahead(data_dir, training):
    """On a JPEG of quality 40 the clean net sharpens the blocks; the JPEG-aware net `auto` picks for q40 (the
    low band's) is ahead of it (pinned)."""
    compressed, _ = training
    hr, srs, scores = compressed.compare(read_image(data_dir / "Set5" / "butterfly.png")[0])
    assert set(srs) == {"bicubic", "tiny-1k-x2", "tiny-1k-x2-jpeg-low"}
    assert all(sr.shape == hr.shape for sr in srs.values())
    assert {name: round(psnr, 2) for name, psnr in scores.items()} == {
        "bicubic": 24.99, "tiny-1k-x2": 25.01, "tiny-1k-x2-jpeg-low": 27.14}  # +2.15 dB; the clean net gains 0.02


def test_demo_train_never_overwrites_a_non_empty_out_without_force(tmp_path, training):
    _, demo = training
    out = tmp_path / "demo-out"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(TinySRError, match=r"demo-out: exists and is not empty; pass --force"):
        demo.run_demo(out=out, steps=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
