"""`tinysr export`: a network to ONNX (float or int8), the NumPy runtime's file or a phone format
(`tinysr.export.formats`), never over a file tinysr did not write (`tinysr.export.destination`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysr.errors import TinySRError, one_line
from tinysr.export.destination import check_destination, export_files, total_size
from tinysr.export.formats import export_model
from tinysr.infer.load import load_network


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.format == "onnx-int8" and not args.calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    sources = {"--calibration": args.calibration}
    check_destination(export_files(out, args.format), fmt=args.format, force=args.force, sources=sources)  # early
    network, description = load_network(args.model, scale=args.scale)  # description: the weights file it read
    model = network.to_torch()  # the exporters trace or read a torch module
    written = export_model(model, out, fmt=args.format, calibration=args.calibration, seed=args.seed,
                           force=args.force, sources={"--model": description})
    size = sum(total_size(path) for path in written)
    names = " + ".join(map(str, written))
    print(one_line(f"wrote {names} ({args.format}, {size:,} bytes) from {description}"))
    return 0
