"""`tinysr models`: the bundled pretrained models, as a table or JSON; with --openmodeldb, one model's OpenModelDB
entry (`tinysr.cli.openmodeldb`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from tinysr.pretrained import read_table


def run(args: argparse.Namespace) -> int:
    if args.openmodeldb is not None:
        from tinysr.cli import openmodeldb  # numpy and the engine's reader: not for the listing

        return openmodeldb.run(args)
    rows = read_table()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no bundled models yet; pass a weights file or a run folder to --model")
        return 0
    print(f"{'name':<24} {'scale':>5} {'params':>9} {'bytes':>9}  PSNR (protocol)")
    for r in rows:
        psnr = ", ".join(f"{k} {v:.2f}" for k, v in r.psnr.items())
        print(f"{r.name:<24} {'x' + str(r.scale):>5} {r.params:>9,} {r.bytes:>9,}  {psnr} ({r.protocol})")
    return 0
