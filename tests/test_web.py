"""The browser page (`tinysr web`) in real Chromium: pixel parity with `tinysr.upscale` for every bundled model (RGB,
RGBA and grey), the errors it shows, and its screenshot (docs/web.png).

Chromium is Debian's (`apt-get install -y chromium`), driven by Playwright for Python (`.[dev]`); the README's test
command installs both. The page is served by `tinysr.web.server.serve` on a free port; images go in through the real
file input and come back through the page's own PNG download, read with Pillow.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from playwright import sync_api

from tinysr.cli.web import families, set5_psnr, web_models
from tinysr.errors import TinySRError
from tinysr.delivery.auto import choose_model as auto_choice
from tinysr.delivery.auto import inspect_source, upscale_file
from tinysr.delivery.encode import encode_image
from tinysr.infer.load import load_network
from tinysr.infer.upscale import upscale
from tinysr.pretrained import list_pretrained
from tinysr.web.server import serve, url
from tinysr.web.site import build_site

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "web.png"
#: Parity with `tinysr.upscale`: at most this many grey levels apart, on at most this fraction of the values.
MAX_LEVELS = 1
MAX_FRACTION = 0.001


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    root = build_site(tmp_path_factory.mktemp("site"), web_models(), psnr=set5_psnr(), families=families())
    server = serve(root)
    yield url(server)
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def open_page(browser, address):
    """A new page at `address`, its model menu filled; yields it, then fails on any uncaught error in it."""
    context = browser.new_context(viewport={"width": 900, "height": 760}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(address)
    page.wait_for_selector("#status[data-state=ready]", timeout=30_000)
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser, site_url):
    yield from open_page(browser, site_url)


@pytest.fixture
def js_page(browser, site_url):
    """The page with ?engine=js: every model on the JS engine (the fallback without WebAssembly SIMD)."""
    yield from open_page(browser, site_url + "?engine=js")


@pytest.fixture(scope="module")
def images(tmp_path_factory, data_dir):
    """Small test images as PNG files: 64x48 RGB, RGBA (an alpha ramp with a transparent corner) and grey."""
    folder = tmp_path_factory.mktemp("images")
    butterfly = np.asarray(Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB"))[100:148, 90:154]
    baby = np.asarray(Image.open(data_dir / "Set5" / "baby.png").convert("RGB"))[200:248, 250:314]
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    alpha[:10, :10] = 0
    bird = np.asarray(Image.open(data_dir / "Set5" / "bird.png").convert("L"))[100:148, 100:164]
    arrays = {"rgb": butterfly, "rgba": np.dstack([baby, alpha]), "grey": bird}
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    return paths


# ---------------------------------------------------------------------------------------------------- helpers


def choose_model(page, name: str) -> None:
    page.select_option("#model", name)


def upscale_in_page(page, path: Path, model: str, tmp_path: Path) -> np.ndarray:
    """Pick `model`, give `path` to the file input, wait for the result, download it and read the PNG."""
    choose_model(page, model)
    page.set_input_files("#file", str(path))
    wait_done(page)
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / f"{path.stem}-{model}.png"
    info.value.save_as(saved)
    return np.asarray(Image.open(saved))


def wait_done(page) -> None:
    page.wait_for_selector("#status[data-state=done], #status[data-state=error]", timeout=60_000)
    assert page.get_attribute("#status", "data-state") == "done", page.inner_text("#error")


def reference(path: Path, model: str) -> np.ndarray:
    """`tinysr.upscale` of the file as Pillow reads it (HW grey, HWC RGB or RGBA)."""
    network, _ = load_network(model, scale=None)
    return upscale(np.asarray(Image.open(path)), network)


def assert_parity(got: np.ndarray, want: np.ndarray) -> tuple[int, float]:
    """The page's PNG against `tinysr.upscale`: the same pixels up to `MAX_LEVELS` on `MAX_FRACTION` of values.
    A grey result comes back from the page as RGBA with R = G = B; returns (max levels apart, fraction apart)."""
    if want.ndim == 2:
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 0] == got[..., 2]).all()
        got = got[..., 0]
    elif want.shape[2] == 3:
        assert (got[..., 3] == 255).all()
        got = got[..., :3]
    assert got.shape == want.shape
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    worst, fraction = int(diff.max()), float((diff > 0).mean())
    assert worst <= MAX_LEVELS and fraction <= MAX_FRACTION, (worst, fraction)
    return worst, fraction


# ---------------------------------------------------------------------------------------------------- parity


def engine_of(model: str) -> str:
    """The engine the page should pick: the WebAssembly kernels for a Y-only net, the JS engine for the others."""
    return "wasm" if web_models([model])[0]["kind"] == "luma-anchor" else "js"


@pytest.mark.parametrize("model", list_pretrained())
def test_every_bundled_model_matches_upscale(page, images, model, tmp_path):
    for kind in ("rgb", "rgba", "grey"):
        got = upscale_in_page(page, images[kind], model, tmp_path)
        assert page.evaluate("window.tinysr.lastRun.engine") == engine_of(model)
        worst, fraction = assert_parity(got, reference(images[kind], model))
        print(f"{model} {kind}: max {worst} level(s) apart on {fraction:.4%} of values")


@pytest.mark.parametrize("model", [m for m in list_pretrained() if engine_of(m) == "wasm"])
def test_the_js_fallback_matches_upscale(js_page, images, model, tmp_path):
    """?engine=js runs the Y-only nets on engine.js, the page's fallback where kernels.wasm does not load."""
    for kind in ("rgb", "rgba", "grey"):
        got = upscale_in_page(js_page, images[kind], model, tmp_path)
        assert js_page.evaluate("window.tinysr.lastRun.engine") == "js"
        assert_parity(got, reference(images[kind], model))


def test_a_page_whose_wasm_does_not_load_falls_back_to_js(browser, site_url, images, tmp_path):
    """kernels.wasm unreachable (the request aborted): the workers run the JS engine, with parity."""
    context = browser.new_context(accept_downloads=True)
    context.route("**/kernels.wasm", lambda route: route.abort())
    page = context.new_page()
    page.goto(site_url)
    page.wait_for_selector("#status[data-state=ready]", timeout=30_000)
    got = upscale_in_page(page, images["rgb"], "tiny-1k-x2", tmp_path)
    assert page.evaluate("window.tinysr.lastRun.engine") == "js"
    assert_parity(got, reference(images["rgb"], "tiny-1k-x2"))
    context.close()


def test_the_committed_wasm_is_what_its_source_builds_to():
    """web/kernels.sha256, written by `npm run build` in web/, names the hashes of kernels.ts and the vendored
    kernels.wasm: editing either without rebuilding (and committing both) fails here."""
    for line in (ROOT / "web" / "kernels.sha256").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((ROOT / name).read_bytes()).hexdigest() == digest, f"{name}: run npm run build in web/"


def test_tiles_match_a_whole_image_run(page, data_dir, tmp_path):
    """An image of several tiles (256 LR pixels a side) equals `tinysr.upscale` untiled: the context is enough."""
    path = tmp_path / "butterfly.png"
    Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB").resize((300, 280)).save(path)
    got = upscale_in_page(page, path, "tiny-1k-x2", tmp_path)
    assert_parity(got, reference(path, "tiny-1k-x2"))


def test_exif_orientation_is_applied(page, data_dir, tmp_path):
    """A JPEG whose EXIF says "rotate 90" comes out rotated: 64x48 stored, 48x64 shown, 96x128 upscaled."""
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to display
    Image.open(data_dir / "Set5" / "head.png").convert("RGB").resize((64, 48)).save(path, exif=exif)
    got = upscale_in_page(page, path, "tiny-1k-x2", tmp_path)
    assert got.shape == (128, 96, 4)


# ---------------------------------------------------------------------------------------------------- errors


def assert_error_then_usable(page, contains: str, images, tmp_path) -> None:
    page.wait_for_selector("#status[data-state=error]", timeout=30_000)
    assert contains in page.inner_text("#error")
    got = upscale_in_page(page, images["rgb"], "tiny-1k-x2", tmp_path)
    assert got.shape == (96, 128, 4)
    assert page.is_hidden("#error")


def test_a_file_that_is_not_an_image(page, images, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    page.set_input_files("#file", str(path))
    assert_error_then_usable(page, "notes.png is not an image this browser can decode", images, tmp_path)


def test_an_image_over_the_tile_budget(page, images, tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (8000, 7000), 128).save(path)  # 56 MP: 224 MP at x2, over the 50 MP budget
    choose_model(page, "tiny-1k-x2")
    page.set_input_files("#file", str(path))
    assert_error_then_usable(page, "8000 x 7000 at x2 gives 224.0 MP, over this page's budget of 50.0 MP", images,
                             tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a tinysr web model (not JSON)"),
    (json.dumps({"format": "tinysr-web-model", "version": 1, "scale": 2, "kind": "program", "name": "x",
                 "program": {"input": "lr", "output": "up", "ops": [{"op": "bicubic_upscale", "in": ["lr"],
                                                                     "out": "up"}]}}),
     "unsupported ops in the model: bicubic_upscale"),
    (json.dumps({"format": "tinysr-web-model", "version": 7}), "model file version 7; this page reads 1"),
])
def test_an_unsupported_model_file(page, images, tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_text(content)
    page.set_input_files("#model-file", str(path))
    page.wait_for_selector("#status[data-state=error]", timeout=30_000)
    assert f"model.json: {message}" in page.inner_text("#error")
    assert_error_then_usable(page, message, images, tmp_path)


# ---------------------------------------------------------------------------------------------------- auto


@pytest.fixture(scope="module")
def sent(tmp_path_factory, data_dir):
    """A Set5 crop as the files a receiver gets: JPEGs of several qualities, a lossy WebP, a PNG, and what
    `tinysr encode` writes (x2, 125 x 93: padded by the sender, cropped back by the receiver)."""
    folder = tmp_path_factory.mktemp("sent")
    rgb = np.asarray(Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB"))[40:133, 30:155]
    paths = {}
    for quality in (30, 59, 60, 75, 83, 90, 95):
        paths[f"q{quality}"] = folder / f"q{quality}.jpg"
        Image.fromarray(rgb).save(paths[f"q{quality}"], quality=quality)
    paths["webp"], paths["png"] = folder / "lossy.webp", folder / "clean.png"
    Image.fromarray(rgb).save(paths["webp"], quality=70)
    Image.fromarray(rgb).save(paths["png"])
    best = next(c for c in encode_image(rgb, budget=4000)[1] if c.scale == 2)
    paths["encoded"] = folder / "encoded.jpg"
    paths["encoded"].write_bytes(best.data)
    return paths


def run_auto(page, path: Path, family: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    """(the model the page's family picked, the downloaded result) for one file."""
    got = upscale_in_page(page, path, family, tmp_path)
    return page.evaluate("window.tinysr.lastRun.model"), got


@pytest.mark.parametrize("family", ["auto", "auto-5k"])
def test_auto_in_the_page_picks_what_the_cli_picks(page, sent, family, tmp_path):
    """Every file gets the model `tinysr upscale --model FAMILY` takes for it (JPEG quality from the tables, WebP
    lossy, PNG lossless; the band edges on both sides), and the same pixels as `tinysr.delivery.auto.upscale_file`."""
    assert page.eval_on_selector("#model", "m => m.options[0].value") == "auto"  # the default, as in the CLI
    picks = {}
    for key, path in sent.items():
        picks[key], got = run_auto(page, path, family, tmp_path)
        assert picks[key] == auto_choice(inspect_source(path), family=family), key
        assert_parity(got, upscale_file(path, family=family).image)
        assert page.inner_text("#status").startswith(f"{family}: ")
        if key.startswith("q"):
            assert f"JPEG q~{key[1:]} (lossy) -> {picks[key]}" in page.inner_text("#status")
    size = "1k" if family == "auto" else "5k"
    assert picks["q30"] == f"tiny-{size}-x2-jpeg-low" and picks["png"] == f"tiny-{size}-x2"
    assert picks["webp"] == picks["q75"] == f"tiny-{size}-x2-jpeg" and picks["q90"] == f"tiny-{size}-x2-jpeg-high"


def test_auto_restores_the_size_encode_recorded(page, sent, tmp_path):
    picked, got = run_auto(page, sent["encoded"], "auto", tmp_path)
    assert got.shape == (93, 125, 4) and "tinysr:scale=2;size=125x93" in page.inner_text("#status")
    assert_parity(got, upscale_file(sent["encoded"]).image)


def test_auto_ignores_a_record_that_does_not_fit_and_still_upscales(page, tmp_path):
    """Issue 25, case 8 in the page: a comment that merely holds a record, or an exact one of a scale with no model,
    is ignored (the status line says why) and the file is upscaled at x2, as `tinysr upscale --model auto` does."""
    from tinysr.delivery.record import Record, save_options

    cases = {"loose.jpg": ({"comment": b"hello tinysr:scale=1;size=5x5 world"},
                           '"hello tinysr:scale=1;size=5x5 world" is not exactly a tinysr record'),
             "x8.jpg": (save_options("JPEG", Record(8, 128, 128)),
                        "tinysr:scale=8;size=128x128: scale x8 is not one of x1, x2, x3, x4")}
    for name, (options, why) in cases.items():
        path = tmp_path / name
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path, quality=80, **options)
        picked, got = run_auto(page, path, "auto", tmp_path)
        assert got.shape == (32, 32, 4) and f"record ignored ({why})" in page.inner_text("#status")
        with pytest.warns(UserWarning, match="record ignored"):
            want = upscale_file(path)
        assert picked == want.model
        assert_parity(got, want.image)


def _record_files(folder: Path) -> dict[str, Path]:
    """Files whose comments and EXIF descriptions test the record rule: exact or not, fitting or not, JPEG and WebP."""
    from tinysr.delivery.record import EXIF_IMAGE_DESCRIPTION

    def exif(text: str) -> bytes:
        data = Image.Exif()
        data[EXIF_IMAGE_DESCRIPTION] = text
        return data.tobytes()

    pixels = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    png_text = PngInfo()
    png_text.add_text("comment", "tinysr:scale=2;size=32x32")  # a PNG's text chunk is no record, here or there
    files = {
        "exact-x2.jpg": {"comment": b"tinysr:scale=2;size=31x32"},
        "exact-x1.jpg": {"comment": b"tinysr:scale=1;size=16x16"},
        "loose.jpg": {"comment": b"hello tinysr:scale=1;size=5x5 world"},
        "zero.jpg": {"comment": b"tinysr:scale=2;size=0x0"},
        "x8.jpg": {"comment": b"tinysr:scale=8;size=128x128"},
        "zeros.jpg": {"comment": b"tinysr:scale=02;size=32x32"},
        "too-big.jpg": {"comment": b"tinysr:scale=2;size=40x40"},
        "newline.jpg": {"comment": b"tinysr:scale=2;size=32x32\n"},
        "long.jpg": {"comment": b"tinysr:" + b"x" * 100},
        "camera.jpg": {"comment": b"made with a camera"},
        "exif-x3.jpg": {"exif": exif("tinysr:scale=3;size=48x46")},
        "exif-loose.jpg": {"exif": exif("see tinysr:scale=2;size=32x32")},
        "exif-x4.webp": {"exif": exif("tinysr:scale=4;size=64x61")},
        "exif-bad.webp": {"exif": exif("tinysr:scale=4;size=64x70")},
        "plain.png": {},
        "text.png": {"pnginfo": png_text},
    }
    paths = {}
    for name, options in files.items():
        paths[name] = folder / name
        pixels.save(paths[name], quality=80, **options)
    data = paths["exact-x2.jpg"].read_bytes()  # a second comment, before Pillow's: the last one counts, as in Pillow
    comment = b"tinysr:scale=8;size=128x128"
    paths["two-comments.jpg"] = folder / "two-comments.jpg"
    paths["two-comments.jpg"].write_bytes(data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
                                          + data[2:])
    return paths


def test_the_page_applies_the_record_rule_as_python_does(page, tmp_path):
    """page/auto.js's record rule against `tinysr.delivery.auto`'s, file by file: which record counts, and the
    reason a text naming tinysr is ignored (word for word)."""
    from tinysr.delivery.auto import checked_record

    paths = _record_files(tmp_path)
    python = {}
    for name, path in paths.items():
        info = inspect_source(path)
        width, height = Image.open(path).size
        info = checked_record(info, height=height, width=width, family="auto")
        record = info.record and [info.record.scale, info.record.width, info.record.height]
        python[name] = [record, info.ignored]
    page_result = page.evaluate("""async (files) => {
        const auto = await import("./auto.js");
        const family = window.tinysr.families.get("auto");
        const out = {};
        for (const [name, bytes] of Object.entries(files)) {
          const info = auto.checkedRecord(auto.inspectBytes(new Uint8Array(bytes)), 16, 16, family);
          out[name] = [info.record && [info.record.scale, info.record.width, info.record.height], info.ignored];
        }
        return out;
    }""", {name: list(path.read_bytes()) for name, path in paths.items()})
    assert page_result == python
    counted = {name for name, (record, _) in python.items() if record}
    assert counted == {"exact-x2.jpg", "exact-x1.jpg", "exif-x3.jpg", "exif-x4.webp", "two-comments.jpg"}
    ignored = {name for name, (_, why) in python.items() if why}
    assert ignored == set(paths) - counted - {"camera.jpg", "plain.png", "text.png"}


# ---------------------------------------------------------------------------------------------------- screenshot


def test_screenshot(page, data_dir, tmp_path):
    """The page after upscaling a Set5 crop, the before/after split in the middle (< 150 KB), as the README shows it:
    written to the test's folder, and to docs/web.png with TINYSR_UPDATE_SCREENSHOT=1 (a test run leaves the
    checkout as it was)."""
    path = tmp_path / "butterfly.png"
    Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB").crop((0, 0, 256, 160)).save(path)
    choose_model(page, "tiny-5k-x2")
    page.set_input_files("#file", str(path))
    wait_done(page)
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    target = SCREENSHOT if os.environ.get("TINYSR_UPDATE_SCREENSHOT") == "1" else tmp_path / "web.png"
    Image.open(shot).convert("RGB").quantize(colors=128).save(target, optimize=True)
    assert target.stat().st_size < 150_000
    assert "256 x 160 -> 512 x 320 with tiny-5k-x2 in" in page.inner_text("#status")


# ---------------------------------------------------------------------------------------------------- the command


def test_tinysr_web_serves_the_page(tmp_path):
    """`tinysr web` prints its URL and serves the page and every bundled model from 127.0.0.1."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "tinysr", "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        address = line.split()[2]
        assert address.startswith("http://127.0.0.1:")
        assert b'<script type="module" src="app.js">' in urllib.request.urlopen(address).read()
        index = json.load(urllib.request.urlopen(address + "models/index.json"))
        assert [m["name"] for m in index["models"]] == list_pretrained()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 130  # SIGTERM ends it as Ctrl-C does every command (README, Reliability)
    assert proc.stderr.read().strip().splitlines()[-1] == "tinysr: interrupted"


def test_build_writes_a_static_site_and_keeps_an_existing_folder(tmp_path):
    out = tmp_path / "site"
    build_site(out, web_models(["tiny-1k-x2"]), families=families())
    assert (out / "index.html").is_file() and (out / "models" / "tiny-1k-x2.json").is_file()
    index = json.loads((out / "models" / "index.json").read_text())
    assert [f["name"] for f in index["families"]] == ["auto", "auto-5k"]
    assert index["families"][0]["bands"]["2"][0] == [95, "tiny-1k-x2"]
    assert (out / "kernels.wasm").read_bytes()[:4] == b"\0asm"
    with pytest.raises(TinySRError, match="exists and is not empty"):
        build_site(out, [])


def test_a_built_page_opened_from_a_file_says_how_to_serve_it(browser, tmp_path):
    """Issue 25, case 12: opened from file:// (module scripts blocked there), the page used to show an empty model
    list and "Choose an image to start."; now its static status says to serve the folder."""
    root = build_site(tmp_path / "site", web_models(["tiny-1k-x2"]), families=families())
    context = browser.new_context()
    page = context.new_page()
    page.goto((root / "index.html").as_uri())
    page.wait_for_timeout(1000)  # give the (blocked) module scripts their chance
    text = page.inner_text("#status")
    context.close()
    assert "tinysr web" in text and "python3 -m http.server" in text, text
