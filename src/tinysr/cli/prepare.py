"""`tinysr prepare div2k|cinic`: argparse wiring only; each sub-command makes one library call and prints a summary.

Warnings from the library (skipped files, unverified archives, generated LR) are printed as one line each,
``tinysr: warning: <message>``, as they happen.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable

from tinysr.data.div2k import OFFICIAL_BASE_URL, OFFICIAL_SCALES, SPLITS, div2k, prepare_div2k


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """Add `prepare div2k` and `prepare cinic` to the top-level sub-parsers."""
    p = sub.add_parser("prepare", help="download / build training data (DIV2K, CINIC-10 subset)")
    datasets = p.add_subparsers(dest="dataset", required=True, parser_class=type(p))

    d = datasets.add_parser("div2k", help="download, verify (SHA-256) and unpack the official DIV2K zips")
    d.add_argument("--root", required=True, help="folder for the zips and the official layout (zips found here "
                                                 "are used instead of downloading)")
    d.add_argument("--scales", type=int, nargs="+", default=list(OFFICIAL_SCALES), choices=OFFICIAL_SCALES)
    d.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    d.add_argument("--base-url", default=OFFICIAL_BASE_URL, help="a mirror of the official folder")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a download fails")

    c = datasets.add_parser("cinic", help="seeded class-balanced HR subset of CINIC-10 (or any <class>/ tree)")
    c.add_argument("--src", required=True, help="CINIC-10 root (with train/) or a folder of class folders")
    c.add_argument("--out", required=True, help="output folder (train/, val/, manifest.json)")
    c.add_argument("--per-class", type=int, nargs=2, default=[80, 10], metavar=("TRAIN", "VAL"))
    c.add_argument("--hr-size", type=int, default=256, help="side of the square HR images")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--max-pixels", type=int, default=None, help="decompression-bomb limit per source image")
    c.add_argument("--force", action="store_true", help="replace a non-empty --out")


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
    from tinysr.data.cinic import prepare_cinic  # imports torch (via resize): only when this command runs

    manifest = prepare_cinic(args.src, args.out, per_class=tuple(args.per_class), hr_size=args.hr_size,
                             seed=args.seed, force=args.force, max_pixels=args.max_pixels)
    n_train, n_val = (len(manifest["files"][split]) for split in ("train", "val"))
    print(f"wrote {n_train} train + {n_val} val images ({args.hr_size}x{args.hr_size}) from "
          f"{len(manifest['classes'])} classes to {args.out}")
    return 0


PREPARE: dict[str, Callable[[argparse.Namespace], int]] = {"div2k": _run_div2k, "cinic": _run_cinic}


def run_prepare(args: argparse.Namespace) -> int:
    """Run `tinysr prepare <dataset>`; every library warning is reported (`tinysr.cli` prints each on one line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # every skip is reported
        return PREPARE[args.dataset](args)
