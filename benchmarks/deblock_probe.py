"""Probe: does a parameter-free JPEG deblocker in front of the upscaler help? (Issue 16; the answer was no.)

    python benchmarks/deblock_probe.py [--images 12] [--data ../shared/data]

The classic "re-application of JPEG" (Nosratinia, 2001): for each shift of the 8 x 8 block grid (all 64 with
--shifts 8, the default; 16 with --shifts 4, ...), the luma is cut into 8 x 8 blocks, each block's DCT is
re-quantised with the file's own luminance table, and the inverse DCTs of all shifts are averaged. A variant
hard-thresholds the AC coefficients below t * Q instead. The luma change is added to R, G and B alike, so chroma is
untouched. Hand-written (numpy + scipy's DCT) because no maintained Python package ships it.

Measured on the first N images of BSD200 (training images, x2): LR = `bicubic+jpegQ`, decoded; then, with and
without the deblocker, PSNR-Y of the LR against the clean LR, and of bicubic and `tiny-1k-x2-jpeg` output against HR
(standard protocol), as dB over bicubic on the undeblocked LR. scipy's DCT (`scipy.fft.dctn`, orthonormal = JPEG's).
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn, idctn

from tinysr.data.degrade import bicubic_uint8, mod_crop
from tinysr.data.folder import image_folder
from tinysr.data.io import read_image
from tinysr.infer.load import load_network
from tinysr.infer.upscale import upscale
from tinysr.metrics import PROTOCOLS, measure
from tinysr.resize import imresize

JFIF_LUMA = np.array([0.299, 0.587, 0.114])


def jpeg(img: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(decoded HWC RGB uint8, 8 x 8 luminance table) of `img` through Pillow's JPEG at `quality`."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return np.asarray(im.convert("RGB")), np.array(im.quantization[0], dtype=np.float64).reshape(8, 8)


def deblock_luma(y: np.ndarray, table: np.ndarray, *, step: int, threshold: float | None) -> np.ndarray:
    """The mean over grid shifts (0, step, 2 step, ... < 8 on each axis) of blockwise DCT re-quantisation."""
    pad = 8
    padded = np.pad(y, pad, mode="reflect")
    total, count = np.zeros_like(padded), np.zeros_like(padded)
    q = table[None, :, None, :]
    for dy in range(0, 8, step):
        for dx in range(0, 8, step):
            h, w = (padded.shape[0] - dy) // 8 * 8, (padded.shape[1] - dx) // 8 * 8
            blocks = padded[dy:dy + h, dx:dx + w].reshape(h // 8, 8, w // 8, 8) - 128
            coeffs = dctn(blocks, axes=(1, 3), norm="ortho")
            if threshold is None:
                coeffs = np.round(coeffs / q) * q
            else:
                dc = coeffs[:, 0, :, 0].copy()
                coeffs = np.where(np.abs(coeffs) < threshold * q, 0, coeffs)
                coeffs[:, 0, :, 0] = dc
            total[dy:dy + h, dx:dx + w] += idctn(coeffs, axes=(1, 3), norm="ortho").reshape(h, w) + 128
            count[dy:dy + h, dx:dx + w] += 1
    return (total / np.maximum(count, 1))[pad:-pad, pad:-pad]


def deblock(rgb: np.ndarray, table: np.ndarray, *, step: int, threshold: float | None) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    luma = rgb @ JFIF_LUMA
    change = deblock_luma(luma, table, step=step, threshold=threshold) - luma
    return np.clip(np.round(rgb + change[..., None]), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--shifts", type=int, choices=(1, 2, 4, 8), default=8, help="grid shifts per axis")
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", "../shared/data"))
    args = parser.parse_args()
    protocol, step = PROTOCOLS["standard"], 8 // args.shifts
    net = load_network("tiny-1k-x2-jpeg", scale=2)[0]
    variants = {"none": None, "requantise": ("rq", None), "threshold 0.7Q": ("th", 0.7), "threshold 1.0Q": ("th", 1.0)}
    paths = image_folder(Path(args.data) / "BSD200").hr_paths[:args.images]
    for quality in (30, 50, 75, 90):
        rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for path in paths:
            hr = mod_crop(read_image(path)[0], 2)
            clean_lr = bicubic_uint8(hr, 2)
            decoded, table = jpeg(clean_lr, quality)
            for name, how in variants.items():
                lr = decoded if how is None else deblock(decoded, table, step=step, threshold=how[1])
                rows[name].append((measure(lr, clean_lr, scale=1, protocol=protocol)[0],
                                   measure(imresize(lr, 2.0), hr, scale=2, protocol=protocol)[0],
                                   measure(upscale(lr, net), hr, scale=2, protocol=protocol)[0]))
        base = float(np.mean([r[1] for r in rows["none"]]))
        for name in variants:
            lr_psnr, bic, sr = np.mean(rows[name], axis=0)
            print(f"q{quality} {name:15s} LR {lr_psnr:6.2f} dB   bicubic {bic - base:+.2f}   tiny-1k-x2-jpeg "
                  f"{sr - base:+.2f}", flush=True)


if __name__ == "__main__":
    main()
