"""The JavaScript module (issue 27, point 4): `npm pack` in web/ builds a tarball of the page's modules, the wasm
kernels and every bundled model's JSON; a minimal page imports it, by its package name, from the extracted tarball in
real Chromium and upscales at parity with `tinysr.upscale`; its pure functions pass `node --test` (web/module-test),
in the checkout and in the tarball.

Node.js and npm run the packing (web/prepack.mjs runs this Python for the models); Chromium is Debian's, driven by
Playwright, as in tests/test_web.py. The tarball is extracted into a temporary folder served on 127.0.0.1 by
`tinysr.web.server`.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright import sync_api

import tinysr
from tinysr.cli.web import families, web_models
from tinysr.delivery.auto import choose_model, inspect_source, upscale_file
from tinysr.delivery.encode import encode_image
from tinysr.infer.load import load_network
from tinysr.infer.upscale import upscale
from tinysr.pretrained import list_pretrained
from tinysr.web.server import serve, url
from tinysr.web.site import PAGE_DIR, PAGE_FILES

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: The modules tinysr.js reaches (prepack.mjs follows its imports), copied from the page folder byte for byte.
MODULE_FILES = {"tinysr.js", "auto.js", "engine.js", "image_io.js", "upscaler.js", "worker.js", "wasm_engine.js",
                "kernels.wasm"}
#: The node tests in web/module-test (a new test there changes this count).
NODE_TESTS = 14
#: Parity with `tinysr.upscale`, as tests/test_web.py: at most 1 grey level apart, on at most 0.1 % of the values.
MAX_LEVELS, MAX_FRACTION = 1, 0.001


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"the JavaScript module's tests need {name} (Node.js >= 20.19 and npm) on PATH"
    return path


# ---------------------------------------------------------------------------------------------------- the tarball


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> tuple[Path, Path]:
    """(the tarball `npm pack` writes, its extracted `package/` folder)."""
    out = tmp_path_factory.mktemp("pack")
    env = {**os.environ, "PYTHON": sys.executable, "npm_config_update_notifier": "false"}
    result = subprocess.run([_tool("npm"), "pack", "--json", "--pack-destination", str(out)], cwd=WEB, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    tarball = out / json.loads(result.stdout)[0]["filename"]
    with tarfile.open(tarball) as archive:
        archive.extractall(out / "extracted", filter="data")
    return tarball, out / "extracted" / "package"


def test_the_tarball_holds_the_page_modules_the_kernels_and_every_bundled_model(packed):
    tarball, package = packed
    with tarfile.open(tarball) as archive:
        names = {name.removeprefix("package/") for name in archive.getnames()}
    models = {f"dist/models/{name}.json" for name in list_pretrained()} | {"dist/models/index.json"}
    assert names == {f"dist/{name}" for name in MODULE_FILES} | models | {"package.json", "README.md"}
    for name in MODULE_FILES:  # copies, not forks: the page `tinysr web` serves runs the same bytes
        assert (package / "dist" / name).read_bytes() == (PAGE_DIR / name).read_bytes(), name
    assert (package / "dist" / "kernels.wasm").read_bytes()[:4] == b"\0asm"
    for model in web_models():
        assert json.loads((package / "dist" / "models" / f"{model['name']}.json").read_text()) == model
    index = json.loads((package / "dist" / "models" / "index.json").read_text())
    assert [entry["name"] for entry in index["models"]] == list_pretrained()
    assert index["families"] == families()


def test_the_package_is_versioned_with_tinysr_and_exports_its_entry(packed):
    _, package = packed
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["version"] == tinysr.__version__  # the models are this version's
    assert manifest["type"] == "module" and manifest["exports"]["."] == "./dist/tinysr.js"
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert lock["packages"][""]["version"] == manifest["version"] and lock["name"] == manifest["name"]


def test_the_page_is_the_module_s_first_client():
    """app.js imports the public API only, and `tinysr web` serves every file the package holds."""
    app = (PAGE_DIR / "app.js").read_text()
    assert set(re.findall(r'^import[^;]*?from "([^"]+)";', app, re.MULTILINE | re.DOTALL)) == {"./tinysr.js"}
    assert MODULE_FILES <= set(PAGE_FILES)


# ---------------------------------------------------------------------------------------------------- node --test


def _node_tests(env: dict | None = None) -> tuple[int, int, str]:
    result = subprocess.run([_tool("node"), "--test", "web/module-test"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, **(env or {})})
    output = result.stdout + result.stderr
    passed, failed = (int(re.search(rf"^# {what} (\d+)$", output, re.MULTILINE).group(1)) for what in ("pass", "fail"))
    assert (result.returncode == 0) == (failed == 0), output[-3000:]
    return passed, failed, output


def test_node_tests_pass_on_the_checkout_and_on_the_tarball(packed):
    _, package = packed
    assert _node_tests()[:2] == (NODE_TESTS, 0)
    assert _node_tests({"TINYSR_MODULE": str(package / "dist" / "tinysr.js")})[:2] == (NODE_TESTS, 0)


def test_node_tests_fail_on_a_module_that_answers_otherwise(packed, tmp_path):
    """A copy of the packed module whose crop keeps one column too many fails its test (and only it)."""
    _, package = packed
    altered = tmp_path / "dist"
    shutil.copytree(package / "dist", altered)
    source = (altered / "tinysr.js").read_text()
    assert source.count("(r * w + width) * 4") == 1
    (altered / "tinysr.js").write_text(source.replace("(r * w + width) * 4", "(r * w + width + 1) * 4"))
    passed, failed, output = _node_tests({"TINYSR_MODULE": str(altered / "tinysr.js")})
    assert (passed, failed) == (NODE_TESTS - 1, 1) and "not ok 1 - keeps the top-left width x height" in output


# ---------------------------------------------------------------------------------------------------- Chromium


APP = """<!doctype html>
<meta charset="utf-8">
<title>an app importing tinysr-web</title>
<script type="importmap">{"imports": {"tinysr-web": "./node_modules/tinysr-web/%s"}}</script>
<script type="module">
  import * as tinysr from "tinysr-web";
  window.tinysr = tinysr;
  document.title = "ready";
</script>
"""


@pytest.fixture(scope="module")
def app_url(packed, tmp_path_factory):
    """An app folder that imports the package by name (an import map to its "exports" entry), the tarball's
    package/ as its node_modules/tinysr-web, served on 127.0.0.1."""
    _, package = packed
    app = tmp_path_factory.mktemp("app")
    shutil.copytree(package, app / "node_modules" / "tinysr-web")
    entry = json.loads((package / "package.json").read_text())["exports"]["."].removeprefix("./")
    (app / "index.html").write_text(APP % entry)
    server = serve(app)
    yield url(server)
    server.shutdown()


@pytest.fixture(scope="module")
def app(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(app_url)
        page.wait_for_function("document.title === 'ready'", timeout=30_000)
        yield page
        browser.close()
        assert not errors, f"uncaught errors in the app: {errors}"


@pytest.fixture(scope="module")
def crops(data_dir) -> dict[str, np.ndarray]:
    """64x48 RGB, RGBA (an alpha ramp, a transparent corner) and grey crops of Set5, as `tinysr.upscale` takes them."""
    butterfly = np.asarray(Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB"))[100:148, 90:154]
    baby = np.asarray(Image.open(data_dir / "Set5" / "baby.png").convert("RGB"))[200:248, 250:314]
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    alpha[:10, :10] = 0
    bird = np.asarray(Image.open(data_dir / "Set5" / "bird.png").convert("L"))[100:148, 100:164]
    return {"rgb": butterfly, "rgba": np.dstack([baby, alpha]), "grey": bird}


def _rgba(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = np.dstack([array] * 3)
    if array.shape[2] == 3:
        array = np.dstack([array, np.full(array.shape[:2], 255, np.uint8)])
    return array


def assert_parity(got: np.ndarray, want: np.ndarray) -> tuple[int, float]:
    """RGBA from the module against `tinysr.upscale`'s HW / HWC result (its RGBA form: grey in all three channels,
    opaque without alpha): at most MAX_LEVELS apart on at most MAX_FRACTION of the values."""
    want = _rgba(want)
    assert got.shape == want.shape
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    worst, fraction = int(diff.max()), float((diff > 0).mean())
    assert worst <= MAX_LEVELS and fraction <= MAX_FRACTION, (worst, fraction)
    return worst, fraction


UPSCALE = """async ({ name, width, height, pixels, workers, engine }) => {
  const { loadModel, bundledModelUrl, upscale, WorkerPool } = window.tinysr;
  const model = await loadModel(bundledModelUrl(name));
  const image = new ImageData(Uint8ClampedArray.from(atob(pixels), (c) => c.charCodeAt(0)), width, height);
  const pool = new WorkerPool({ size: workers, engine });
  try {
    const out = await upscale(image, model, { workers: pool });
    let text = "";
    for (const byte of out.data) text += String.fromCharCode(byte);
    return { imageData: out instanceof ImageData, width: out.width, height: out.height, engine: pool.engine,
      pixels: btoa(text) };
  } finally {
    pool.terminate();
  }
}"""


@pytest.mark.parametrize("model, kind, engine, want_engine", [
    ("tiny-1k-x2", "rgb", None, "wasm"), ("tiny-5k-x2", "rgba", None, "wasm"), ("tiny-1k-x4", "grey", "js", "js"),
    ("edsr-tiny-x2", "rgb", None, "js"),
])
def test_the_imported_module_upscales_at_parity(app, crops, model, kind, engine, want_engine):
    lr = crops[kind]
    height, width = lr.shape[:2]
    got = app.evaluate(UPSCALE, {"name": model, "width": width, "height": height, "workers": 2, "engine": engine,
                                 "pixels": base64.b64encode(_rgba(lr).tobytes()).decode()})
    network, _ = load_network(model, scale=None)
    want = upscale(lr, network)
    assert got["imageData"] and got["engine"] == want_engine
    pixels = np.frombuffer(base64.b64decode(got["pixels"]), np.uint8).reshape(got["height"], got["width"], 4)
    worst, fraction = assert_parity(pixels, want)
    print(f"{model} {kind} ({want_engine}): max {worst} level(s) apart on {fraction:.4%} of values")


AUTO = """async ({ files }) => {
  const { autoChoice, bundledModelUrl, cropToRecord, loadModel, readImage, toPng, upscale, IDENTITY } = window.tinysr;
  const out = {};
  for (const [name, bytes] of Object.entries(files)) {
    const file = new File([Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0))], name);
    const pick = await autoChoice(file);  // the bundled "auto" family
    let image = await readImage(file);
    if (pick.name !== IDENTITY) image = await upscale(image, await loadModel(bundledModelUrl(pick.name)));
    if (pick.record) image = cropToRecord(image, pick.record);
    const png = new Uint8Array(await (await toPng(image)).arrayBuffer());
    let text = "";
    for (const byte of png) text += String.fromCharCode(byte);
    out[name] = { model: pick.name, line: pick.line, png: btoa(text) };
  }
  return out;
}"""


def test_auto_from_a_file_picks_and_upscales_as_the_cli(app, data_dir, tmp_path):
    """autoChoice(file) with the bundled "auto" family, then readImage, upscale, cropToRecord and toPng: the model
    `tinysr upscale --model auto` takes for each file, and `tinysr.delivery.auto.upscale_file`'s pixels."""
    rgb = np.asarray(Image.open(data_dir / "Set5" / "butterfly.png").convert("RGB"))[40:133, 30:155]
    paths = {"q30.jpg": tmp_path / "q30.jpg", "q90.jpg": tmp_path / "q90.jpg", "clean.png": tmp_path / "clean.png"}
    Image.fromarray(rgb).save(paths["q30.jpg"], quality=30)
    Image.fromarray(rgb).save(paths["q90.jpg"], quality=90)
    Image.fromarray(rgb).save(paths["clean.png"])
    paths["encoded.jpg"] = tmp_path / "encoded.jpg"  # x2, 125 x 93: the receiver crops back to the recorded size
    paths["encoded.jpg"].write_bytes(next(c for c in encode_image(rgb, budget=4000)[1] if c.scale == 2).data)
    got = app.evaluate(AUTO, {"files": {name: base64.b64encode(path.read_bytes()).decode()
                                        for name, path in paths.items()}})
    for name, path in paths.items():
        want = upscale_file(path, family="auto")
        assert got[name]["model"] == want.model == choose_model(inspect_source(path), family="auto"), name
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(got[name]["png"]))))
        assert_parity(image, want.image)
    assert got["encoded.jpg"]["line"].startswith("JPEG q~") and "tinysr:scale=2;size=125x93" in got["encoded.jpg"]["line"]
    assert {got[name]["model"] for name in ("q30.jpg", "q90.jpg", "clean.png")} == {
        "tiny-1k-x2-jpeg-low", "tiny-1k-x2-jpeg-high", "tiny-1k-x2"}
