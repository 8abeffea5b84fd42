"""`tinysr export`: a network to ONNX (float or int8), the NumPy runtime's file or a phone format
(`tinysr.export.formats`), in tinysr's convention or an app's (`--convention`: chaiNNer's ONNX, Upscayl's ncnn;
`tinysr.export.apps`), never over a file tinysr did not write (`tinysr.export.destination`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysr.errors import TinySRError, one_line
from tinysr.export.apps import check_convention
from tinysr.export.destination import check_destination, export_files, total_size
from tinysr.export.formats import export_model
from tinysr.infer.load import load_network


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.format == "onnx-int8" and not args.calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    check_convention(args.format, args.convention)
    sources = {"--calibration": args.calibration}
    check_destination(export_files(out, args.format), fmt=args.format, force=args.force, sources=sources)  # early
    network, description = load_network(args.model, scale=args.scale)  # description: the weights file it read
    model = network.to_torch()  # the exporters trace or read a torch module
    written = export_model(model, out, fmt=args.format, calibration=args.calibration, seed=args.seed,
                           force=args.force, convention=args.convention, sources={"--model": description})
    size = sum(total_size(path) for path in written)
    names = " + ".join(map(str, written))
    kind = args.format if args.convention == "tinysr" else f"{args.format}, {args.convention}'s convention"
    print(one_line(f"wrote {names} ({kind}, {size:,} bytes) from {description}{_where(args.convention, out)}"))
    return 0


def _where(convention: str, out: Path) -> str:
    """A reminder where Upscayl looks for custom models, when OUT is not there already."""
    if convention == "upscayl" and out.resolve().parent.name != "models":
        return "; Upscayl loads custom models from a folder named models"
    return ""
