"""The browser page's speed and memory in headless Chromium: `tinysr web` on this machine.

Measures, in one Chromium:
1. milliseconds to upscale a 1920x1080 image x2 with tiny-1k-x2 in the page (the WebAssembly SIMD kernels on Web
   Workers, one per core; decode excluded, tiling, workers and assembly included), first run and warm runs; then
   the same on the page's JS engine (?engine=js, the fallback without WebAssembly SIMD) for the speed-up;
2. in the same page, the browser's own high-quality canvas scaling of the same image to 3840x2160
   (`drawImage` with imageSmoothingQuality "high", then `getImageData` so that the pixels exist), for the ratio;
3. the machine's load average (1 min) before and after, since other processes share the cores;
4. the peak memory of the tab for a 12 MP photo (4000x3000 JPEG) at x2: the renderer process's peak RSS (VmHWM)
   and the JS heap (CDP Performance.getMetrics JSHeapUsedSize; typed arrays live outside it).

    PYTHONPATH=src python benchmarks/browser.py [--runs 3]

Needs Chromium (`apt-get install -y chromium`) and Playwright for Python (`pip install -e '.[dev]'`).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from tinysr.cli.web import web_models
from tinysr.web.server import serve, url
from tinysr.web.site import build_site

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DATA = Path(os.environ.get("TINYSR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

CANVAS_SCALING = """async () => {
  const src = window.tinysr.image.canvas, w = src.width * 2, h = src.height * 2;
  const canvas = new OffscreenCanvas(w, h), ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  const t0 = performance.now();
  ctx.drawImage(src, 0, 0, w, h);
  ctx.getImageData(0, 0, w, h);
  return performance.now() - t0;
}"""


def photo(path: Path, size: tuple[int, int]) -> Path:
    """A Set5 image resized (bicubic) to `size`, saved as PNG or JPEG (by suffix)."""
    Image.open(DATA / "Set5" / "butterfly.png").convert("RGB").resize(size, Image.BICUBIC).save(path, quality=90)
    return path


def upscale_once(page, path: Path) -> dict:
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#status[data-state=done], #status[data-state=error]", timeout=600_000)
    assert page.get_attribute("#status", "data-state") == "done", page.inner_text("#error")
    return page.evaluate("window.tinysr.lastRun")


def open_page(browser, site: str):
    """The page at `site` (a URL, query included) with tiny-1k-x2 chosen."""
    page = browser.new_context().new_page()
    page.goto(site)
    page.wait_for_selector("#status[data-state=ready]")
    page.select_option("#model", "tiny-1k-x2")
    return page


def warm_runs(page, hd: Path, runs: int) -> tuple[dict, list[float]]:
    """The first run's lastRun, then the ms of `runs` more on copies of the file (the file input fires no change
    event for the same file twice)."""
    first = upscale_once(page, hd)
    copies = [hd.with_name(f"{hd.stem}-{i}.png") for i in range(runs)]
    return first, [upscale_once(page, Path(shutil.copyfile(hd, c)))["ms"] for c in copies]


def renderer_peak_rss_mb(browser) -> dict[int, float]:
    """VmHWM (peak RSS, MB) of every renderer process of the browser, by process id."""
    cdp = browser.new_browser_cdp_session()
    infos = cdp.send("SystemInfo.getProcessInfo")["processInfo"]
    peaks = {}
    for info in infos:
        if info["type"] != "renderer":
            continue
        status = Path(f"/proc/{info['id']}/status").read_text()
        peaks[info["id"]] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs of the 1080p upscale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = serve(build_site(tmp / "site", web_models(["tiny-1k-x2"])))
        hd, mp12 = photo(tmp / "1080p.png", (1920, 1080)), photo(tmp / "12mp.jpg", (4000, 3000))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            print(f"Chromium {browser.version}, {os.cpu_count()} cores ({platform.processor() or platform.machine()})")
            load_before = os.getloadavg()[0]
            page = open_page(browser, url(server))
            first, warm = warm_runs(page, hd, args.runs)
            canvas = [page.evaluate(CANVAS_SCALING) for _ in range(args.runs)]
            page.context.close()
            js_page = open_page(browser, url(server) + "?engine=js")
            js_first, js_warm = warm_runs(js_page, hd, args.runs)
            js_page.context.close()
            for run, ms in ((first, warm), (js_first, js_warm)):
                print(f"1080p x2 tiny-1k-x2, {run['engine']} engine on {run['workers']} workers: first "
                      f"{run['ms']:.0f} ms, warm median {statistics.median(ms):.0f} ms "
                      f"(runs {', '.join(f'{m:.0f}' for m in ms)}); decode {run['decodeMs']:.0f} ms")
            print(f"1080p x2 canvas drawImage high quality + getImageData: median {statistics.median(canvas):.0f} ms; "
                  f"{first['engine']} engine / canvas {statistics.median(warm) / statistics.median(canvas):.1f}x; "
                  f"js / {first['engine']} {statistics.median(js_warm) / statistics.median(warm):.1f}x")
            print(f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after the 1080p runs")
            before = renderer_peak_rss_mb(browser)
            page = open_page(browser, url(server))
            run = upscale_once(page, mp12)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            new = {pid: mb for pid, mb in renderer_peak_rss_mb(browser).items() if pid not in before}
            print(f"12 MP (4000x3000 JPEG) x2 tiny-1k-x2: {run['ms'] / 1000:.1f} s; renderer peak RSS "
                  f"{max(new.values()):.0f} MB; JS heap used {metrics['JSHeapUsedSize'] / 2**20:.0f} MB "
                  f"(output 8000x6000 RGBA = {8000 * 6000 * 4 / 2**20:.0f} MB)")
            browser.close()
        server.shutdown()


if __name__ == "__main__":
    main()
