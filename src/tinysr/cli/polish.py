"""`tinysr polish RUN --out OUT`: parse, then `tinysr.train.polish_run.polish_run` (RUN's best net polished into OUT)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinysr.cli.types import positive_int


def add_polish_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("polish", help="fit a run's best net on whole training images to mean PSNR (L-BFGS)",
                       description="Last stage for small nets: maximise the validation protocol's mean PSNR on the "
                                   "run's whole training images by full-batch L-BFGS, validating after each step "
                                   "and keeping the best on the run's held-out images.")
    p.add_argument("run", metavar="RUN", help="a run folder with best.safetensors")
    p.add_argument("--out", required=True, metavar="OUT", help="the new run folder")
    p.add_argument("--steps", type=positive_int, help="L-BFGS steps, each validated (default 8)")
    p.add_argument("--evals-per-step", type=positive_int,
                   help="L-BFGS iterations per step, each one or more passes over the training set (default 10)")
    p.add_argument("--history", type=positive_int, help="L-BFGS memory (default 20)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--force", action="store_true", help="overwrite OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_polish(args: argparse.Namespace) -> int:
    import torch

    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        return _polish_command(args)
    finally:  # main() may be called in-process
        torch.set_num_threads(threads)


def _polish_command(args: argparse.Namespace) -> int:
    from tinysr.train.polish_run import polish_run
    from tinysr.train.runs import RUN_BEST

    out = Path(args.out)
    try:
        result = polish_run(Path(args.run), out, steps=args.steps, evals_per_step=args.evals_per_step,
                            history=args.history, force=args.force, progress=not args.no_progress)
    except KeyboardInterrupt:
        kept = (f"; {out / RUN_BEST} holds the best polish step so far" if (out / RUN_BEST).is_file() else
                "; nothing was polished")
        print(f"tinysr: interrupted{kept}", file=sys.stderr)
        return 130
    print(f"{out}: val PSNR {result.start_psnr:.3f} -> {result.best_psnr:.3f} dB at polish step {result.best_step}; "
          f"weights {out / RUN_BEST}")
    return 0
