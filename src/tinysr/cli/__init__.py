"""The `tinysr` command: parse (`cli.parser`), pre-check (`cli.checks`), then import the verb's one runner module
and call it.

Laziness is decided here, once: `VERBS` names each verb's runner module, imported only after the arguments parse and
pass the light checks, so `tinysr --help`, `tinysr VERB --help`, a usage error, an unknown model or a missing input
import neither torch nor numpy (tests/test_cli_start.py). Each runner's `run(args)` makes one library call. Around
it, `main` keeps every ending to one line:
- a library error (`TinySRError`) prints `tinysr: error: ...` (control characters escaped) and exits with 2;
- Ctrl-C or SIGTERM, at any moment, prints `tinysr: interrupted` and exits with 130 (a command that has work to save,
  such as training, saves it first: SIGTERM arrives as the same KeyboardInterrupt as Ctrl-C);
- a closed pipe (`tinysr models --json | head`) ends quietly, as `cat` would.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from tinysr.cli.parser import build_parser, verb_of
from tinysr.errors import TinySRError, one_line

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
    "web": "tinysr.cli.web",
}
#: Exit statuses: a usage or library error, and an interruption (128 + SIGINT, as shells report it).
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:  # warnings.showwarning API
    """A warning (a skipped image, an unverified download) as one `tinysr: warning: ...` line, without Python's
    second line of source code."""
    print(f"tinysr: warning: {one_line(message)}", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null, so that Python's flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run_verb(args: argparse.Namespace) -> int:
    """Pre-check `args`, import the verb's runner and run it; a library error becomes one line and EXIT_ERROR."""
    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        try:
            from tinysr.cli.checks import check_args  # after parsing, like the runner: `--help` needs neither

            check_args(args)
            return importlib.import_module(VERBS[args.command]).run(args)
        except TinySRError as exc:
            print(f"tinysr: error: {one_line(exc)}", file=sys.stderr)
            return EXIT_ERROR
        except ModuleNotFoundError as exc:  # a job of an extra the install lacks: one line naming the extra
            extra = missing_extra(exc.name or "", args.command)
            if extra is None:
                raise
            print(f"tinysr: error: tinysr {args.command} needs the [{extra}] extra ({exc.name} is not installed): "
                  f"pip install 'tinysr[{extra}]'", file=sys.stderr)
            return EXIT_ERROR


#: top-level module of a package an extra brings -> that extra (`pyproject.toml`'s optional dependencies); torch is
#: in several, so the verb decides (`TORCH_EXTRA`).
EXTRA_OF_MODULE = {"matplotlib": "train", "skimage": "train", "scipy": "train", "onnx": "export",
                   "onnxruntime": "export", "av": "video", "imageio_ffmpeg": "video", "flatbuffers": "tflite",
                   "ai_edge_litert": "tflite", "pnnx": "ncnn", "ncnn": "ncnn", "coremltools": "coreml"}
#: verb -> the extra that brings torch for it.
TORCH_EXTRA = {"export": "export"}


def missing_extra(module: str, verb: str) -> str | None:
    """The extra whose package `module` belongs to (None: not one of tinysr's extras, a real bug)."""
    top = module.split(".")[0]
    if top == "torch":
        return TORCH_EXTRA.get(verb, "train")
    return EXTRA_OF_MODULE.get(top)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        parser = build_parser(verbs=[verb_of(argv)])
        if not argv:
            parser.print_usage(sys.stderr)
            print("tinysr: error: name a command (tinysr --help lists them)", file=sys.stderr)
            return EXIT_ERROR
        status = run_verb(parser.parse_args(argv))
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not in Python's flush at exit
        return status
    except KeyboardInterrupt:
        print("tinysr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
