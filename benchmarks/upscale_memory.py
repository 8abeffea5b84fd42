"""Peak memory of `tinysr upscale` on a large image, against Pillow's own bicubic resize of the same image.

Usage: ``python benchmarks/upscale_memory.py [--side 8000] [--model tiny-1k-x2]`` (about 3 minutes at 8000).
Writes a side x side RGB PNG (smooth gradients plus noise, so it neither compresses to nothing nor is pure noise)
to a temporary folder, then measures with ``/usr/bin/time -v`` (maximum resident set size, wall time), each as a
fresh process:
  - ``tinysr upscale --model M big.png -o out.png`` (default tiling: 512 LR pixels, one tile per core);
  - the baseline: Pillow opens the PNG, resizes it x2 with ``Image.BICUBIC`` and saves the PNG.
Prints both, their ratio, and the machine. The README's memory claim quotes this benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BASELINE = ("import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
            "im.resize((im.width * 2, im.height * 2), Image.BICUBIC).save(sys.argv[2])")


def make_image(path: Path, side: int) -> None:
    """A side x side RGB test image, written a band of rows at a time (the generator itself stays small)."""
    rng = np.random.default_rng(0)
    x = np.arange(side, dtype=np.float32)
    bands = []
    for top in range(0, side, 1000):
        y = np.arange(top, min(top + 1000, side), dtype=np.float32)[:, None]
        base = np.stack([128 + 100 * np.sin(x / 97 + y / 131), 128 + 100 * np.cos(x / 61 - y / 89),
                         (x + y) % 256 * np.ones_like(y)], axis=-1)
        bands.append(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))
    Image.fromarray(np.concatenate(bands)).save(path)


def measure(argv: list[str]) -> tuple[float, float]:
    """(peak resident memory in GB, wall seconds) of one command, from /usr/bin/time -v."""
    result = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, check=True)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", result.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return peak_kb / 1024**2, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--model", default="tiny-1k-x2")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="tinysr-memory-") as tmp:
        big = Path(tmp) / "big.png"
        make_image(big, args.side)
        ours = measure([sys.executable, "-m", "tinysr", "upscale", "--model", args.model, str(big),
                        "-o", str(Path(tmp) / "out.png")])
        pillow = measure([sys.executable, "-c", BASELINE, str(big), str(Path(tmp) / "pillow.png")])
    output_gb = (2 * args.side) ** 2 * 3 / 1024**3
    print(f"{args.side}x{args.side} RGB x2 -> {2 * args.side}x{2 * args.side} ({output_gb:.2f} GB of output pixels)")
    print(f"tinysr upscale --model {args.model}: peak {ours[0]:.2f} GB, {ours[1]:.0f} s")
    print(f"Pillow resize BICUBIC + save:  peak {pillow[0]:.2f} GB, {pillow[1]:.0f} s")
    print(f"ratio (tinysr / Pillow): memory {ours[0] / pillow[0]:.2f}x, time {ours[1] / pillow[1]:.2f}x")


if __name__ == "__main__":
    main()
