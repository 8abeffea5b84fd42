"""`tinysr export`: a network to ONNX (float or int8) or to the NumPy runtime's file (`tinysr.export.formats`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysr.errors import TinySRError
from tinysr.export.formats import export_model
from tinysr.infer.load import load_network
from tinysr.paths import refuse_overlap


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.format == "onnx-int8" and not args.calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    if out.exists() and not args.force:
        raise TinySRError(f"{out}: exists; pass --force to overwrite")
    if not out.parent.is_dir():
        raise TinySRError(f"{out.parent}: no such folder for {out.name}")
    model, description = load_network(args.model, scale=args.scale)  # description: the weights file it read
    refuse_overlap(source=description, destination=out, source_option="--model", destination_option="OUT")
    export_model(model, out, fmt=args.format, calibration=args.calibration, seed=args.seed)
    print(f"wrote {out} ({args.format}, {out.stat().st_size:,} bytes) from {description}")
    return 0
