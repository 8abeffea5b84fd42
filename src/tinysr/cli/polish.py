"""`tinysr polish RUN --out OUT`: `tinysr.train.polish_run.polish_run` (RUN's best net polished into OUT)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinysr.paths import refuse_overlap
from tinysr.train.polish_run import polish_run
from tinysr.train.runs import RUN_BEST


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    refuse_overlap(source=args.run, destination=out, source_option="RUN", destination_option="--out")
    try:
        result = polish_run(Path(args.run), out, steps=args.steps, evals_per_step=args.evals_per_step,
                            history=args.history, force=args.force, threads=args.threads,
                            progress=not args.no_progress)
    except KeyboardInterrupt:
        kept = (f"; {out / RUN_BEST} holds the best polish step so far" if (out / RUN_BEST).is_file() else
                "; nothing was polished")
        print(f"tinysr: interrupted{kept}", file=sys.stderr)
        return 130
    print(f"{out}: val PSNR {result.start_psnr:.3f} -> {result.best_psnr:.3f} dB at polish step {result.best_step}; "
          f"weights {out / RUN_BEST}")
    return 0
