"""Benchmark: tinysr's PNG writer (`tinysr.data.png.write_png`) against Pillow's PNG encoder (issue 24).

    python benchmarks/png_write.py [--repeats 5] [--data DIR]

Images (real photos of $TINYSR_DATA, default ../shared/data, upscaled x2 with Pillow bicubic, as `tinysr upscale`
outputs are upscaled photos):
- BSD100 101085 (481x321 -> 962x642), Set14 lenna (512x512 -> 1024x1024), Urban100 img_001 (1024x644 -> 2048x1288);
- 4K mosaic: 16 BSD100 photos tiled 4x4 and cropped to 1920x1080, then x2 to 3840x2160;
- 4K astronaut: scikit-image's astronaut resized to 1920x1080 (`benchmarks/upscale.py`'s test image), then x2: a
  smooth image (upscaled twice), where plain zlib level 3 did worst (skipped without scikit-image).
Encoders, each writing to memory (no disk): tinysr (default workers: the cores this process may use), tinysr with
one worker, Pillow `save(format="PNG")` (its default, compress_level 6: the yardstick) and Pillow compress_level=1.
The runs are interleaved (tinysr, tinysr 1 worker, Pillow 6, Pillow 1, tinysr, ...) after one warm-up each, so a slow
or fast spell of a shared machine moves all of them; prints medians of `--repeats`, sizes, the ratios against
Pillow's default (time and size), the load average and the machine. Every tinysr file is decoded once by Pillow and
compared with the pixels.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

from tinysr.cpu import cores
from tinysr.data.png import write_png

REPO = Path(__file__).resolve().parents[1]


def upscaled(im: Image.Image) -> np.ndarray:
    """x2 with Pillow bicubic, as HWC RGB uint8."""
    return np.asarray(im.convert("RGB").resize((im.width * 2, im.height * 2), Image.BICUBIC))


def mosaic(data: Path) -> Image.Image:
    """16 landscape BSD100 photos (481x321) tiled 4x4, cropped to 1920x1080."""
    paths = [p for p in sorted((data / "BSD100").glob("*.png")) if Image.open(p).size == (481, 321)][:16]
    canvas = Image.new("RGB", (4 * 481, 4 * 321))
    for i, path in enumerate(paths):
        canvas.paste(Image.open(path).convert("RGB"), ((i % 4) * 481, (i // 4) * 321))
    return canvas.crop((0, 0, 1920, 1080))


def images(data: Path) -> dict[str, np.ndarray]:
    out = {
        "BSD100 101085 x2": upscaled(Image.open(data / "BSD100" / "101085.png")),
        "Set14 lenna x2": upscaled(Image.open(data / "Set14" / "lenna.png")),
        "Urban100 img_001 x2": upscaled(Image.open(data / "Urban100" / "img_001.webp")),
        "4K mosaic (16 BSD100) x2": upscaled(mosaic(data)),
    }
    try:
        from skimage import data as skimage_data
    except ImportError:
        return out
    astronaut = Image.fromarray(skimage_data.astronaut()).resize((1920, 1080), Image.BICUBIC)
    return {**out, "4K astronaut x2": upscaled(astronaut)}


def encoders(workers: int) -> dict:
    def pillow(level: int | None):
        options = {} if level is None else {"compress_level": level}
        return lambda f, img: Image.fromarray(img).save(f, format="PNG", **options)

    return {
        f"tinysr ({workers} workers)": lambda f, img: write_png(f, img),
        "tinysr (1 worker)": lambda f, img: write_png(f, img, workers=1),
        "Pillow default (6)": pillow(None),
        "Pillow level 1": pillow(1),
    }


def measure(img: np.ndarray, coders: dict, repeats: int) -> dict[str, tuple[float, int]]:
    """Median seconds and bytes per encoder, runs interleaved, one warm-up each; tinysr's files decoded once."""
    times: dict[str, list[float]] = {name: [] for name in coders}
    sizes: dict[str, int] = {}
    for run in range(repeats + 1):
        for name, encode in coders.items():
            buffer = io.BytesIO()
            start = time.perf_counter()
            encode(buffer, img)
            elapsed = time.perf_counter() - start
            if run == 0:
                sizes[name] = len(buffer.getvalue())
                if name.startswith("tinysr"):
                    assert np.array_equal(np.asarray(Image.open(buffer)), img), name
            else:
                times[name].append(elapsed)
    return {name: (statistics.median(times[name]), sizes[name]) for name in coders}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    pillow_zlib = (f"zlib-ng {features.version_feature('zlib_ng')}" if features.check_feature("zlib_ng")
                   else f"zlib {features.version('zlib')}")
    return (f"{models[0] if models else platform.processor()}, {os.cpu_count()} cores ({cores()} usable), "
            f"Python {platform.python_version()} (zlib {zlib.ZLIB_RUNTIME_VERSION}), Pillow {PIL.__version__} "
            f"({pillow_zlib}), NumPy {np.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    coders = encoders(cores())
    baseline = "Pillow default (6)"
    print("\n| image | encoder | ms | MB | time x Pillow | size x Pillow |\n|---|---|---|---|---|---|")
    for label, img in images(Path(args.data)).items():
        results = measure(img, coders, args.repeats)
        base_time, base_size = results[baseline]
        for name, (seconds, size) in results.items():
            print(f"| {label} {img.shape[1]}x{img.shape[0]} | {name} | {seconds * 1e3:,.0f} | {size / 1e6:.3f} | "
                  f"{seconds / base_time:.2f} | {size / base_size:.3f} |", flush=True)
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
