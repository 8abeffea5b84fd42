"""End to end, in fresh processes: a 1920x1080 photo to its x2 file through `tinysr upscale`, against a Pillow
script (open, bicubic resize, save) doing the same in the same run (issue 24).

Usage: ``python benchmarks/end_to_end.py [--repeats 7] [--data DIR]`` (about 2 minutes).

Cases, each a fresh process from start to file written, interleaved repeat by repeat with its Pillow baseline so
that both see the same load:
- PNG -> x2 PNG: `tinysr upscale photo.png -o out.png` (default `--model auto`: tiny-1k-x2 for a PNG) against
  ``Image.open(src).resize((2w, 2h), BICUBIC).save(dst)`` (Pillow's default PNG level 6); also the sizes of the two
  PNGs, against the goal of at most 1.10x Pillow's size for the same pixels (tinysr's own pixels saved by Pillow);
- JPEG -> x2 JPEG: `tinysr upscale photo.jpg -o out.jpg` (auto: the JPEG-aware net of its quality band) against the
  same script saving at tinysr's JPEG quality (95);
- cold start: the PNG case with an empty Numba cache (the very first run after install compiles the kernels).
The input photo is 1920x1080, tiled from real photos of $TINYSR_DATA (Urban100's first images, centre crops), saved
as PNG and as a JPEG of quality 90. Prints the machine, the medians, the ratios and the goal lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SIZE = (1920, 1080)
PILLOW_SCRIPT = ("import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
                 "im.resize((im.width * 2, im.height * 2), Image.BICUBIC).save(sys.argv[2], **({{'quality': 95}} "
                 "if sys.argv[2].endswith('.jpg') else {{}}))")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import numba
    import PIL

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, Pillow {PIL.__version__}, "
            f"NumPy {np.__version__}, Numba {numba.__version__}")


def make_photo(data: Path, folder: Path) -> tuple[Path, Path]:
    """photo.png and photo.jpg (q90): 1920x1080 tiled from centre crops of real photos."""
    sources = sorted((data / "Urban100").glob("*.webp"))[:6]
    if len(sources) < 6:
        raise SystemExit(f"{data / 'Urban100'}: need 6 photos (set --data or TINYSR_DATA)")
    canvas = Image.new("RGB", SIZE)
    tile_w, tile_h = SIZE[0] // 3, SIZE[1] // 2
    for i, path in enumerate(sources):
        im = Image.open(path).convert("RGB")
        left, top = max(0, (im.width - tile_w) // 2), max(0, (im.height - tile_h) // 2)
        canvas.paste(im.crop((left, top, left + tile_w, top + tile_h)), ((i % 3) * tile_w, (i // 3) * tile_h))
    canvas.save(folder / "photo.png")
    canvas.save(folder / "photo.jpg", quality=90)
    return folder / "photo.png", folder / "photo.jpg"


def child_env(pycache: str, numba_cache: str) -> dict[str, str]:
    """Bytecode cached (as for an installed package, even where PYTHONDONTWRITEBYTECODE is set) and Numba's cache
    in a folder of this run (so that the cold case can start empty)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": pycache, "NUMBA_CACHE_DIR": numba_cache}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return time.perf_counter() - start


def tinysr_argv(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-m", "tinysr", "upscale", str(src), "-o", str(dst), "--force"]


def pillow_argv(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-c", PILLOW_SCRIPT.format(), str(src), str(dst)]


def run_case(name: str, src: Path, suffix: str, work: Path, env: dict[str, str], repeats: int) -> tuple[float, float]:
    ours, pillow = [], []
    for _ in range(repeats):
        ours.append(timed(tinysr_argv(src, work / f"tinysr{suffix}"), env))
        pillow.append(timed(pillow_argv(src, work / f"pillow{suffix}"), env))
    a, b = statistics.median(ours), statistics.median(pillow)
    print(f"{name}: tinysr {a:.3f} s, Pillow script {b:.3f} s, ratio {a / b:.2f}x (goal <= 1.00x) "
          f"[{' '.join(f'{t:.2f}' for t in ours)} / {' '.join(f'{t:.2f}' for t in pillow)}]")
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        png, jpg = make_photo(Path(args.data), work)
        env = child_env(str(work / "pycache"), str(work / "numba"))
        timed(tinysr_argv(png, work / "warm.png"), env)  # fill the bytecode and Numba caches
        run_case("PNG -> x2 PNG", png, ".png", work, env, args.repeats)
        ours = work / "tinysr.png"
        same_pixels = work / "same-pixels-pillow.png"
        Image.open(ours).save(same_pixels)
        size, reference = ours.stat().st_size, same_pixels.stat().st_size
        print(f"PNG size: tinysr {size / 1e6:.2f} MB, Pillow (level 6) on the same pixels {reference / 1e6:.2f} MB, "
              f"ratio {size / reference:.3f}x (goal <= 1.10x)")
        run_case("JPEG -> x2 JPEG", jpg, ".jpg", work, env, args.repeats)
        colds, pillows = [], []
        for i in range(max(1, args.repeats // 3)):
            cold_env = child_env(str(work / "pycache"), str(work / f"numba-cold-{i}"))
            colds.append(timed(tinysr_argv(png, work / "cold.png"), cold_env))
            pillows.append(timed(pillow_argv(png, work / "pillow.png"), env))
            shutil.rmtree(work / f"numba-cold-{i}", ignore_errors=True)
        a, b = statistics.median(colds), statistics.median(pillows)
        print(f"cold start (empty Numba cache), PNG -> x2 PNG: tinysr {a:.3f} s, Pillow script {b:.3f} s, ratio "
              f"{a / b:.2f}x (goal <= 2.00x)")


if __name__ == "__main__":
    main()
