"""Time tinysr's MATLAB-exact ``imresize`` against Pillow's bicubic resize on a 2040x1356 RGB photo.

Usage: ``python benchmarks/resize.py [--repeats 5]`` (about 15 s). Both of tinysr's conventions are timed uint8 in,
uint8 out: the uint8 path ``imresize(img)`` and the float path ``to_uint8(imresize(img.astype(np.float64)))``.
Pillow's ``Image.resize((w, h), Image.BICUBIC)`` runs on the same image, interleaved with ours repeat by repeat so
that both see the same load on a shared machine. Prints the median ms, the ratio to Pillow, the machine and its
load average before and after.

The photo is Urban100 ``img_001`` (1024x644, read from ``$TINYSR_DATA``, default ``<repo>/../shared/data``; or
``--image PATH``) upsampled to 2040x1356 with Pillow's bicubic: real content at the DIV2K size.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image

from tinysr.resize import imresize, to_uint8

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / os.environ.get("TINYSR_DATA", "../shared/data")
SIZE = (2040, 1356)  # (width, height), as Pillow counts
SCALES = (0.5, 0.25, 2.0)


def load_photo(path: Path) -> Image.Image:
    """The photo at ``path`` as RGB, bicubic-resized by Pillow to ``SIZE``."""
    with Image.open(path) as im:
        return im.convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)


def machine() -> str:
    """Platform, CPU model, cores and library versions, on one line."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = models[0] if models else cpu
    return (
        f"{platform.platform()} | {cpu} | {os.cpu_count()} cores, torch threads {torch.get_num_threads()} | "
        f"numpy {np.__version__}, torch {torch.__version__}, Pillow {PIL.__version__}"
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (runnable tasks; this box has ``os.cpu_count()`` cores)."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def median_ms(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each candidate in ms, the candidates interleaved within each repeat (after one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for name, run in candidates.items():
        run()  # warm-up: contribution caches, allocator
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(ts)) for name, ts in times.items()}


def bench_scale(photo: Image.Image, scale: float, repeats: int) -> dict[str, float]:
    img = np.asarray(photo)
    out_h, out_w = int(np.ceil(scale * img.shape[0])), int(np.ceil(scale * img.shape[1]))
    candidates = {
        "pillow": lambda: photo.resize((out_w, out_h), Image.Resampling.BICUBIC),
        "uint8 path": lambda: imresize(img, scale),
        "float path + to_uint8": lambda: to_uint8(imresize(img.astype(np.float64), scale)),
    }
    return median_ms(candidates, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per candidate (median reported)")
    parser.add_argument("--image", type=Path, default=DATA / "Urban100" / "img_001.webp", help="source photo")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        parser.error(f"--image: no such file: {args.image}")
    photo = load_photo(args.image)
    print(f"machine: {machine()}")
    print(f"load average before: {load_average()}")
    print(f"image: {args.image.name} -> {SIZE[0]}x{SIZE[1]} RGB, median of {args.repeats} interleaved repeats")
    print(f"{'scale':>6} {'output':>10} {'Pillow ms':>10} {'uint8 ms':>9} {'ratio':>6} {'float ms':>9} {'ratio':>6}")
    for scale in SCALES:
        ms = bench_scale(photo, scale, args.repeats)
        out = f"{int(np.ceil(scale * SIZE[0]))}x{int(np.ceil(scale * SIZE[1]))}"
        pil, u8, fl = ms["pillow"], ms["uint8 path"], ms["float path + to_uint8"]
        print(f"{scale:>6g} {out:>10} {pil:>10.1f} {u8:>9.1f} {u8 / pil:>5.2f}x {fl:>9.1f} {fl / pil:>5.2f}x")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
