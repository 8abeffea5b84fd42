"""The `tinysr` command: parse (`cli.parser`, torch-free), then import the verb's one runner module and call it.

Laziness is decided here, once: `VERBS` names each verb's runner module, imported only after the arguments parse,
so `tinysr --help`, `tinysr VERB --help` and a usage error never import torch. Each runner's `run(args)` makes one
library call; errors from the library (`TinySRError`) become one `tinysr: error: ...` line and exit status 2.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence

from tinysr.cli.parser import build_parser
from tinysr.errors import TinySRError

#: verb -> the module whose `run(args) -> int` carries it out.
VERBS = {
    "eval": "tinysr.cli.eval",
    "demo": "tinysr.cli.demo",
    "train": "tinysr.cli.train",
    "polish": "tinysr.cli.polish",
    "upscale": "tinysr.cli.upscale",
    "encode": "tinysr.cli.encode",
    "models": "tinysr.cli.models",
    "export": "tinysr.cli.export",
    "prepare": "tinysr.cli.prepare",
    "experiment": "tinysr.cli.experiment",
    "report": "tinysr.cli.report",
}


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:  # warnings.showwarning API
    """A warning (a skipped image, an unverified download) as one `tinysr: warning: ...` line, without Python's
    second line of source code."""
    print(f"tinysr: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        try:
            return importlib.import_module(VERBS[args.command]).run(args)
        except TinySRError as exc:
            print(f"tinysr: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("tinysr: interrupted", file=sys.stderr)
            return 130
