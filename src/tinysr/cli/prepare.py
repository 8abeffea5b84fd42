"""`tinysr prepare div2k|cinic|testsets`: each sub-command makes one library call and prints a summary.

Warnings from the library (skipped files, unverified archives, generated LR) are printed as one line each,
``tinysr: warning: <message>``, as they happen.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable

from tinysr.data.cinic import prepare_cinic
from tinysr.data.div2k import div2k, prepare_div2k
from tinysr.data.testsets import prepare_testsets


def _run_div2k(args: argparse.Namespace) -> int:
    extracted = prepare_div2k(args.root, scales=tuple(args.scales), splits=tuple(args.splits),
                              base_url=args.base_url, timeout=args.timeout)
    print(f"extracted: {', '.join(extracted)}" if extracted else f"DIV2K archives already extracted in {args.root}")
    for split in args.splits:
        images = div2k(args.root, split=split, scales=tuple(args.scales))
        print(f"{images.name}: {len(images)} HR images, official LR for "
              f"{', '.join(f'x{s}' for s in sorted(images.lr_paths)) or 'no scale'}")
    return 0


def _run_cinic(args: argparse.Namespace) -> int:
    manifest = prepare_cinic(args.src, args.out, per_class=tuple(args.per_class), hr_size=args.hr_size,
                             seed=args.seed, force=args.force, max_pixels=args.max_pixels)
    n_train, n_val = (len(manifest["files"][split]) for split in ("train", "val"))
    print(f"wrote {n_train} train + {n_val} val images ({args.hr_size}x{args.hr_size}) from "
          f"{len(manifest['classes'])} classes to {args.out}")
    return 0


def _run_testsets(args: argparse.Namespace) -> int:
    laid_out = prepare_testsets(args.out, sets=tuple(args.sets), if_missing=args.if_missing,
                                base_url=args.base_url, timeout=args.timeout)
    fetched = ", ".join(f"{name} {n}" for name, n in laid_out.items() if n)
    if args.if_missing and not fetched:
        print(f"{args.out}: {', '.join(args.sets)} already in place (--if-missing: not read again)")
    else:
        print(f"{args.out}: {', '.join(args.sets)} in place and checked"
              + (f" (files laid out now: {fetched})" if fetched else " (nothing downloaded)"))
    return 0


PREPARE: dict[str, Callable[[argparse.Namespace], int]] = {"div2k": _run_div2k, "cinic": _run_cinic,
                                                           "testsets": _run_testsets}


def run(args: argparse.Namespace) -> int:
    """Run `tinysr prepare <dataset>`; every library warning is reported (`tinysr.cli` prints each on one line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # every skip is reported
        return PREPARE[args.dataset](args)
