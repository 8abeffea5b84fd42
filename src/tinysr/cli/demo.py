"""`tinysr demo`: the bundled nets on the embedded photos, clean and JPEG (`tinysr.showcase.demo`, core install);
`tinysr demo --train`: train the 963-parameter EDSR on scikit-image's photos (`tinysr.experiments.demo`, [train])."""

from __future__ import annotations

import argparse

from tinysr.errors import TinySRError

#: what `demo --train` needs beyond the core install: the top-level modules of the [train] extra it imports.
TRAIN_MODULES = ("torch", "matplotlib", "skimage", "scipy", "tqdm")


def run_training(args: argparse.Namespace) -> int:
    """`demo --train`; one line naming the extra when the install lacks it."""
    try:
        from tinysr.experiments.demo import run_demo  # torch, matplotlib, scikit-image: the [train] extra
    except ModuleNotFoundError as exc:
        from tinysr.infer.weights import TORCH_EXTRA  # the extra's install line, named once

        missing = (exc.name or "").partition(".")[0]
        if missing not in TRAIN_MODULES:
            raise
        raise TinySRError(f"demo --train needs the [train] extra ({missing} is not installed): "
                          f"{TORCH_EXTRA}") from None
    return run_demo(out=args.out, steps=args.steps, threads=args.threads, force=args.force)


def run(args: argparse.Namespace) -> int:
    if args.train:
        return run_training(args)
    if args.steps is not None:
        raise TinySRError("--steps: the demo trains only with --train (tinysr demo --train --steps N)")
    from tinysr.showcase.demo import for_terminal, run_showcase  # after the usage check: numpy, Pillow, Numba

    shown = run_showcase(out=args.out, force=args.force)
    print(for_terminal(shown.report, args.out))
    return 0
