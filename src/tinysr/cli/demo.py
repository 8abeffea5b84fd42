"""`tinysr demo`: the main job on photos that ship with scikit-image (`tinysr.experiments.demo`)."""

from __future__ import annotations

import argparse

from tinysr.experiments.demo import run_demo


def run(args: argparse.Namespace) -> int:
    return run_demo(out=args.out, steps=args.steps, threads=args.threads, force=args.force)
