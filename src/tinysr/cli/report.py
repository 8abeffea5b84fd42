"""`tinysr report` (and `tinysr experiment report`): tables and figures rebuilt from run folders alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinysr.experiments.report import build_report


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.runs_dir) / "report"
    files = build_report(args.runs_dir, out, device=args.device, visual=not args.no_visual, test_data=args.test_data)
    print(f"wrote {len(files)} files to {out}: {', '.join(f.name for f in files)}")
    return 0
