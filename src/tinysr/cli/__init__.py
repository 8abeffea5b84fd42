"""The `tinysr` command. Only this layer sees argparse: each command parses, then makes one library call."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence

from tinysr import __version__
from tinysr.cli.prepare import add_prepare_parser, run_prepare
from tinysr.errors import TinySRError
from tinysr.cli.experiment import add_experiment_parser, add_report_parser, run_experiment, run_report
from tinysr.cli.polish import add_polish_parser, run_polish
from tinysr.cli.train import add_train_parser, run_train
from tinysr.cli.upscale import (add_export_parser, add_models_parser, add_upscale_parser, run_export, run_models,
                                run_upscale)

SCALES = (2, 3, 4)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option, and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM of an upscaler on a folder of HR images")
    p.add_argument("--model", required=True, help="bicubic, a weights file, a run folder, or a bundled model")
    p.add_argument("--data", required=True, nargs="+", help="folder(s) of HR images")
    p.add_argument("--scale", type=int, required=True, choices=SCALES)
    p.add_argument("--protocol", default="standard", choices=("standard", "study"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--max-pixels", type=int, default=None, help="raise Pillow's decompression-bomb limit")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the network over the 8 flips/rotations (EDSR's '+'; 8x the multiply-adds)")


def run_eval(args: argparse.Namespace) -> int:
    from tinysr.data.folder import decode_all, image_folder
    from tinysr.evaluate import evaluate
    from tinysr.metrics import PROTOCOLS
    from tinysr.infer.load import resolve_upscaler

    upscaler, model_desc = resolve_upscaler(args.model, scale=args.scale, device=args.device,
                                               self_ensemble=args.self_ensemble)
    reports = []
    for folder in args.data:
        image_set = image_folder(folder)
        images = ((path.stem, img) for path, img in decode_all(image_set, strict=True, max_pixels=args.max_pixels))
        reports.append(evaluate(upscaler, images, scale=args.scale, protocol=PROTOCOLS[args.protocol],
                                dataset=image_set.name, model=model_desc, progress=not args.json))
    if args.json:
        out = [r.to_dict() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        print("\n\n".join(r.to_table() for r in reports))
    return 0


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on embedded photos (no data needed)")
    p.add_argument("--out", default="demo-out", help="folder for the demo's report and figure")
    p.add_argument("--steps", type=int, help="training steps (default: the demo recipe's 4,000)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def run_demo(args: argparse.Namespace) -> int:
    from tinysr.experiments.demo import run_demo as demo

    return demo(out=args.out, steps=args.steps, threads=args.threads)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "eval": run_eval,
    "demo": run_demo,
    "train": run_train,
    "polish": run_polish,
    "upscale": run_upscale,
    "models": run_models,
    "export": run_export,
    "prepare": run_prepare,
    "experiment": run_experiment,
    "report": run_report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tinysr", description="Single-image super-resolution around EDSR.")
    parser.add_argument("--version", action="version", version=f"tinysr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_eval_parser(sub)
    add_demo_parser(sub)
    add_train_parser(sub)
    add_polish_parser(sub)
    add_upscale_parser(sub)
    add_models_parser(sub)
    add_export_parser(sub)
    add_prepare_parser(sub)
    add_experiment_parser(sub)
    add_report_parser(sub)
    return parser


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:  # warnings.showwarning API
    """A warning (a skipped image, an unverified download) as one `tinysr: warning: ...` line, without Python's
    second line of source code."""
    print(f"tinysr: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        try:
            return COMMANDS[args.command](args)
        except TinySRError as exc:
            print(f"tinysr: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("tinysr: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    raise SystemExit(main())
