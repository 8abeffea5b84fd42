"""Maintainer tool: where should `--model auto`'s JPEG quality bands start? Measured on held-out training images.

    python tools/band_sweep.py --scale 2 --models tiny-1k-x2 tiny-1k-x2-jpeg-high tiny-1k-x2-jpeg tiny-1k-x2-jpeg-low \
        --qualities 25 35 45 55 56 57 58 59 60 70 80 81 82 83 84 85 90 91 92 93 94 95 96 97 [--data ../shared/data]

For each quality Q it makes the held-out split every bundled JPEG-aware net was validated on (10 images of T91 +
BSD200, seed 0: `tinysr.train.start.load_data` with `--val-split 10`) under `bicubic+jpegQ`, and prints each model's
PSNR-Y gain over bicubic there (standard protocol). Give the models highest band first (clean, high, blind, low):
the tool then names, for each neighbouring pair, the lowest swept quality from which the higher band's net stays
ahead (`tinysr.delivery.auto.JPEG_BANDS` takes those as the bands' lowest qualities). No test set is read.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from tinysr.infer.load import load_network
from tinysr.train.config import DataConfig, RunConfig, TrainConfig
from tinysr.train.loop import bicubic_baseline, validate
from tinysr.train.start import load_data

PROTOCOL = "standard"
VAL_SPLIT, SEED = 10, 0  # the split of every bundled JPEG-aware run (`--val-split 10 --seed 0`)


def held_out(data: Path, *, scale: int, quality: int):
    """The held-out pairs (`PairedImages`) of T91 + BSD200 at `scale` under `bicubic+jpeg<quality>`."""
    config = RunConfig(model={}, train=TrainConfig(protocol=PROTOCOL, seed=SEED), protocol=PROTOCOL, seed=SEED,
                       data=DataConfig(train=(str(data / "T91"), str(data / "BSD200")), val=None, scale=scale,
                                       degradation=f"bicubic+jpeg{quality}", val_split=VAL_SPLIT))
    return load_data(config, progress=False)[1]


def band_starts(gains: dict[int, dict[str, float]], models: list[str]) -> dict[str, int | None]:
    """For each model but the last: the lowest swept quality from which it beats the next model at every higher
    swept quality (None if it never does)."""
    qualities = sorted(gains)
    starts = {}
    for upper, lower in zip(models, models[1:]):
        ahead = [gains[q][upper] > gains[q][lower] for q in qualities]
        starts[upper] = next((q for i, q in enumerate(qualities) if all(ahead[i:])), None)
    return starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--models", nargs="+", required=True, help="bundled names, highest band first")
    parser.add_argument("--qualities", nargs="+", type=int, required=True)
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", "../shared/data"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    nets = {name: load_network(name, scale=args.scale)[0].to_torch() for name in args.models}
    print(f"dB over bicubic, {VAL_SPLIT} held-out training images, x{args.scale}, protocol {PROTOCOL}")
    print("quality | " + " | ".join(args.models))
    gains = {}
    for quality in sorted(args.qualities):
        val = held_out(Path(args.data), scale=args.scale, quality=quality)
        base = bicubic_baseline(val, protocol=PROTOCOL)
        gains[quality] = {name: validate(net, val, protocol=PROTOCOL)[0] - base for name, net in nets.items()}
        print(f"{quality} | " + " | ".join(f"{gains[quality][name]:+.3f}" for name in args.models), flush=True)
    for name, start in band_starts(gains, args.models).items():
        print(f"{name}: ahead of the next band from q{start}" if start else f"{name}: never ahead of the next band")


if __name__ == "__main__":
    main()
