"""In-process speed of the default path: `tinysr.upscale(img, "tiny-1k-x2")` on a 1920x1080 photo at x2, default
options, against Pillow's bicubic resize and OpenCV's INTER_CUBIC in the same run, and against the compute floor.

Usage: ``python benchmarks/api_speed.py [--model tiny-1k-x2] [--repeats 9]`` (under a minute).

Each repeat runs tinysr, Pillow and OpenCV (if `cv2` imports) back to back on the same image, after one warm-up each
(the engine's kernels loaded, the model read once), so that a busy spell of a shared machine moves all three; prints
the medians, tinysr's ratio to each (issue 24's goal: <= 0.5x Pillow), the engine that ran, and the compute floor:
the network's multiply-adds per frame (`tinysr.models.complexity`-style count from the deployed layer plan, luma
and the HR stage excluded) over this machine's measured float32 multiply-add rate (a large NumPy matmul on every
core: BLAS at its best, a ceiling no thin conv reaches).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

import tinysr
from tinysr.cpu import cores
from tinysr.infer.upscale import choose_engine

REPO = Path(__file__).resolve().parents[1]


def photo(data: Path) -> np.ndarray:
    """1920x1080 RGB tiled from centre crops of six real photos (Urban100)."""
    canvas = Image.new("RGB", (1920, 1080))
    sources = sorted((data / "Urban100").glob("*.webp"))[:6]
    if len(sources) < 6:
        raise SystemExit(f"{data / 'Urban100'}: need 6 photos (set --data or TINYSR_DATA)")
    for i, path in enumerate(sources):
        im = Image.open(path).convert("RGB")
        left, top = max(0, (im.width - 640) // 2), max(0, (im.height - 540) // 2)
        canvas.paste(im.crop((left, top, left + 640, top + 540)), ((i % 3) * 640, (i // 3) * 540))
    return np.asarray(canvas)


def macs_per_frame(model, height: int, width: int) -> int:
    """The convs' multiply-adds at LR for one frame (every conv of a tiny net runs at LR)."""
    return sum(int(np.prod(w.shape)) for w in model.fused.weights) * height * width if model.fused else 0


def peak_macs_per_s() -> float:
    """float32 multiply-adds per second of a 2048^3 matmul on every core (the best case of this machine)."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2048**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-1k-x2")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {cores()} cores, Python {platform.python_version()}, NumPy {np.__version__}")
    img = photo(Path(args.data))
    model = tinysr.load_model(args.model)
    pil = Image.fromarray(img)
    size = (img.shape[1] * model.scale, img.shape[0] * model.scale)
    try:
        import cv2
    except ImportError:
        cv2 = None
    paths = {"tinysr": lambda: tinysr.upscale(img, model),
             "Pillow BICUBIC": lambda: pil.resize(size, Image.BICUBIC)}
    if cv2 is not None:
        paths["OpenCV INTER_CUBIC"] = lambda: cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
    for fn in paths.values():
        fn()  # warm-up
    times = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            times[name].append(_timed(fn))
    medians = {name: statistics.median(t) for name, t in times.items()}
    engine = choose_engine(model, self_ensemble=False, device="cpu", rgb=True, fused=None)
    print(f"{args.model} ({engine} engine), 1920x1080 -> {size[0]}x{size[1]}, median of {args.repeats}:")
    for name, t in medians.items():
        print(f"  {name:20s} {t * 1e3:8.1f} ms")
    ours = medians["tinysr"]
    print(f"tinysr / Pillow BICUBIC: {ours / medians['Pillow BICUBIC']:.2f}x (goal <= 0.50x)")
    if cv2 is not None:
        print(f"tinysr / OpenCV INTER_CUBIC: {ours / medians['OpenCV INTER_CUBIC']:.2f}x")
    macs, peak = macs_per_frame(model, *img.shape[:2]), peak_macs_per_s()
    if macs:
        floor = macs / peak
        print(f"compute floor: {macs / 1e9:.2f} GMAC of convs / {peak / 1e9:.0f} GMAC/s (matmul, {cores()} cores) = "
              f"{floor * 1e3:.1f} ms; tinysr is {ours / floor:.1f}x the floor")


if __name__ == "__main__":
    main()
