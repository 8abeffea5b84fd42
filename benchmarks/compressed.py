"""Compressed input: every bundled model of a scale, and `--model auto` / `auto-5k`, on JPEG-compressed LR.

    python benchmarks/compressed.py [--sets Set5 Set14 BSD100 Urban100] [--scales 2 4] [--qualities 30 50 75 90]
                                    [--models M ...] [--data ../shared/data] [--limit N] [--self-ensemble]
                                    [--json OUT]

The issue-16 table, for any test set and scale: LR = the `bicubic+jpegQ` degradation (MATLAB bicubic, then Pillow's
JPEG at quality Q, default 4:2:0), and the `bicubic` one for the "clean" column; PSNR-Y under the `standard`
protocol (`tinysr.evaluate`, the same path as `tinysr eval --degradation`), printed as dB over bicubic on the same
LR. A family row (auto, auto-5k) is the model that family picks for such a file: for each Q a real JPEG is written
and inspected (`tinysr.delivery.auto.inspect_source`, quality estimated from its tables), for "clean" a PNG; its
numbers are that model's. --self-ensemble runs every model as `tinysr upscale --self-ensemble` does (the mean of
the 8 flips and rotations, 8x the work). Test sets are measured here, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinysr.data.folder import image_folder
from tinysr.data.io import read_image
from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.delivery.auto import AUTO_FAMILIES, choose_model, inspect_source, network
from tinysr.infer.load import bundled_names
from tinysr.infer.upscale import upscale
from tinysr.metrics import PROTOCOLS

CLEAN = "clean"
PROTOCOL = PROTOCOLS["standard"]


def degradation(column: str) -> str:
    return "bicubic" if column == CLEAN else f"bicubic+jpeg{column}"


def family_choice(family: str, column: str, *, scale: int) -> str:
    """The model `family` picks for a PNG (clean) or a Pillow JPEG of quality `column`, read back from a real file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("a.png" if column == CLEAN else "a.jpg")
        pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, **({} if column == CLEAN else {"quality": int(column)}))
        return choose_model(inspect_source(path), scale=scale, family=family)


def models_of_scale(scale: int) -> list[str]:
    """Every bundled tiny model of `scale` (the issue's table is about the <= 5k nets)."""
    return [name for name in bundled_names() if name.startswith("tiny-") and network(name).config.scale == scale]


def measure_set(folder: Path, *, scale: int, columns: list[str], models: list[str], limit: int | None,
                self_ensemble: bool = False) -> dict[str, dict[str, float]]:
    """{row: {column: mean PSNR-Y}} for bicubic and each model."""
    paths = image_folder(folder).hr_paths[:limit]
    images = [(p.stem, read_image(p)[0]) for p in paths]
    upscalers = {"bicubic": bicubic_upscaler(scale)} | {
        m: (lambda lr, net=network(m): upscale(lr, net, self_ensemble=self_ensemble)) for m in models}
    table: dict[str, dict[str, float]] = {row: {} for row in upscalers}
    for column in columns:
        for row, fn in upscalers.items():
            report = evaluate(fn, images, scale=scale, protocol=PROTOCOL, dataset=folder.name, model=row,
                              degradation=degradation(column))
            table[row][column] = report.mean["psnr"]
    return table


def markdown(table: dict[str, dict[str, float]], families: dict[str, dict[str, str]], *, title: str,
             columns: list[str]) -> str:
    head = ["| " + title + " | " + " | ".join(c if c == CLEAN else f"jpeg{c}" for c in columns) + " |",
            "|---" * (len(columns) + 1) + "|"]
    base = table["bicubic"]
    rows = ["| bicubic | " + " | ".join(f"{base[c]:.2f}" for c in columns) + " |"]
    for row in (r for r in table if r != "bicubic"):
        rows.append(f"| {row} | " + " | ".join(f"{table[row][c]:.2f} ({table[row][c] - base[c]:+.2f})"
                                               for c in columns) + " |")
    for family, picks in families.items():
        rows.append(f"| **{family}** | " + " | ".join(
            f"**{table[picks[c]][c] - base[c]:+.2f}** ({picks[c]})" for c in columns) + " |")
    return "\n".join(head + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100", "Urban100"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--qualities", nargs="+", type=int, default=[30, 50, 75, 90])
    parser.add_argument("--data", default=os.environ.get("TINYSR_DATA", "../shared/data"))
    parser.add_argument("--models", nargs="*", help="bundled models to measure (default: every tiny one of the "
                        "scale); the models the families pick are always measured")
    parser.add_argument("--limit", type=int, help="first N images of each set (default: all)")
    parser.add_argument("--self-ensemble", action="store_true", help="every model with 8x self-ensemble")
    parser.add_argument("--json", metavar="OUT", help="also write every number to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    columns = [CLEAN] + [str(q) for q in args.qualities]
    print(f"# {platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), torch "
          f"{torch.__version__}; {PROTOCOL.describe(2)}")
    results = {}
    for scale in args.scales:
        families = {f: {c: family_choice(f, c, scale=scale) for c in columns} for f in AUTO_FAMILIES}
        listed = models_of_scale(scale) if args.models is None else [m for m in args.models
                                                                     if network(m).config.scale == scale]
        models = list(dict.fromkeys(listed + [m for p in families.values() for m in p.values()]))
        for name in args.sets:
            start = time.perf_counter()
            table = measure_set(Path(args.data) / name, scale=scale, columns=columns, models=models,
                                limit=args.limit, self_ensemble=args.self_ensemble)
            results[f"{name}-x{scale}"] = {"psnr": table, "families": families}
            title = f"{name} x{scale}" + (" (self-ensemble)" if args.self_ensemble else "")
            print(f"\n{markdown(table, families, title=title, columns=columns)}\n"
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
