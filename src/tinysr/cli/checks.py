"""Light pre-checks of a parsed command line: `tinysr.cli.main` runs them before it imports the verb's runner.

A runner imports torch and numpy, seconds on a cold start; a misspelt model name, a missing input or folder should
not wait for them. The checks here read only the file system and `pretrained/models.json` (standard library and
`tinysr.pretrained`). Each raises the one-line `TinySRError` that the runner's own check raises, word for word (the
source is named beside each), so that the message does not depend on which of the two saw the mistake. What cannot
be decided cheaply is left to the runner, which checks everything again: a --model that exists as a file or folder,
or looks like a path; a folder's contents; a mix of present and missing inputs.

The one heavy check comes last: a degradation name is parsed by `tinysr.data.degrade`, which imports numpy and
Pillow, so that a bad model or folder on the same command line is still reported without them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from tinysr.cli.parser import AUTO_FAMILY_NAMES
from tinysr.errors import TinySRError
from tinysr.pretrained import list_pretrained

#: A --model value with one of these suffixes, or with a "/", names a weights path (`tinysr.infer.load.weights_path`).
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")


def unknown_model(spec: str, *, per_file: Sequence[str] = ()) -> TinySRError:
    """`tinysr.infer.load.load_network`'s error for a name that is neither a path nor bundled; `per_file`: the auto
    families the verb also takes, named as `tinysr upscale` names them."""
    known = ", ".join(list_pretrained()) or "none bundled"
    text = f"unknown model {spec!r}: give a weights file, a run folder, or a bundled model ({known})"
    return TinySRError(text + (f", or per file: {', '.join(per_file)}" if per_file else ""))


def check_model(spec: str, *, per_file: Sequence[str] = ()) -> None:
    """A --model that is no family: a path is left to the runner, any other name must be a bundled model."""
    path = Path(spec)
    if path.exists() or path.suffix in WEIGHTS_SUFFIXES or "/" in spec:
        return
    if spec not in list_pretrained():
        raise unknown_model(spec, per_file=per_file)


def check_folder(folder: str) -> None:
    """An image folder given by an option (`tinysr.data.folder.scan_folder`'s error)."""
    root = Path(folder)
    if not root.is_dir():
        raise TinySRError(f"{root}: image folder not found" if not root.exists() else f"{root}: not a folder")


def check_image_file(image: str) -> None:
    """An input image file that is missing or a folder (`tinysr.data.io.read_image`'s error)."""
    path = Path(image)
    if not path.exists():
        raise TinySRError(f"{path}: cannot read image (no such file)")
    if path.is_dir():
        raise TinySRError(f"{path}: cannot read image (is a directory)")


def check_inputs(inputs: Sequence[str]) -> None:
    """`tinysr upscale`'s INPUTs when none of them exists (`tinysr.cli.upscale.gather` and `run`'s error); with some
    present, the runner upscales those and reports the others."""
    missing = [f"{Path(spec)}: no such file or folder" for spec in inputs
               if not (Path(spec).is_dir() or Path(spec).is_file())]
    if missing and len(missing) == len(inputs):
        raise TinySRError(missing[0] if len(missing) == 1 else f"nothing to upscale: {'; '.join(missing)}")


def check_degradation(name: str | None) -> None:
    """A --degradation name, parsed by `tinysr.data.degrade` (whose one-line error names the option). Heavy: numpy
    and Pillow come with it, so it runs after every light check."""
    if name is None:
        return
    from tinysr.data.degrade import parse_degradation

    parse_degradation(name, option="--degradation")


def check_upscale(args: argparse.Namespace) -> None:
    if args.model not in AUTO_FAMILY_NAMES:
        check_model(args.model, per_file=AUTO_FAMILY_NAMES)
    check_inputs(args.inputs)


def check_eval(args: argparse.Namespace) -> None:
    """In `tinysr.cli.eval.run`'s order: --lr-data's pairing, the model (`tinysr.infer.load.resolve_upscaler` for
    bicubic), the folders, then the degradation."""
    if args.lr_data is not None and len(args.data) != 1:
        raise TinySRError(f"--lr-data pairs its files with one --data folder, got {len(args.data)}")
    if args.model == "bicubic":
        if args.self_ensemble:
            raise TinySRError("--self-ensemble needs a network; bicubic has nothing to average")
        if args.scale is None:
            raise TinySRError("--model bicubic needs --scale (a network knows its own)")
    elif args.model not in AUTO_FAMILY_NAMES:
        check_model(args.model)
    for folder in [*args.data, *([args.lr_data] if args.lr_data is not None else [])]:
        check_folder(folder)
    check_degradation(args.degradation)


def check_export(args: argparse.Namespace) -> None:
    check_model(args.model)


def check_encode(args: argparse.Namespace) -> None:
    check_image_file(args.image)


def check_train(args: argparse.Namespace) -> None:
    """--init for a new run (a resumed run keeps its own), then the degradation."""
    if args.init and not args.resume:
        check_model(args.init)
    check_degradation(args.degradation)


def check_web(args: argparse.Namespace) -> None:
    for spec in args.model or ():
        check_model(spec)


#: verb -> its pre-check; a verb not named here has none (its runner checks all).
CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "upscale": check_upscale,
    "eval": check_eval,
    "export": check_export,
    "encode": check_encode,
    "train": check_train,
    "web": check_web,
}


def check_args(args: argparse.Namespace) -> None:
    """Raise the first mistake the light checks find in `args`, a parsed `tinysr` command line."""
    check = CHECKS.get(args.command)
    if check is not None:
        check(args)
