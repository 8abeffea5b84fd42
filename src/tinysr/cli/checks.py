"""Light pre-checks of a parsed command line: `tinysr.cli.main` runs them before it imports the verb's runner.

A runner imports torch and numpy, seconds on a cold start; a misspelt model name, a missing input or folder should
not wait for them. The checks here read only the file system and `pretrained/models.json` (standard library and
`tinysr.pretrained`). Each raises the one-line `TinySRError` that the runner's own check raises, word for word (the
source is named beside each), so that the message does not depend on which of the two saw the mistake. What cannot
be decided cheaply is left to the runner, which checks everything again: a --model that exists as a file or folder,
or looks like a path; a folder's contents; a mix of present and missing inputs.

The one heavy check comes last: a degradation name is parsed by `tinysr.data.degrade`, which imports numpy and
Pillow, so that a bad model or folder on the same command line is still reported without them.

Two rules live here only, for the command line: `-o` of `tinysr upscale` with a suffix that is neither an image's nor
a video's is refused (it would become a folder of that name), and `--trust` vouches for exactly the weights files the
command names (`trust_models`; the runners load them by name, and `tinysr.integrity` asks).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tinysr.cli.parser import AUTO_FAMILY_NAMES
from tinysr.errors import TinySRError
from tinysr.pretrained import list_pretrained

#: A --model value with one of these suffixes, or with a "/", names a weights path (`tinysr.infer.load.weights_path`).
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth")
#: The suffixes `tinysr upscale -o FILE` writes: `tinysr.data.io.IMAGE_SUFFIXES` and the keys of
#: `tinysr.video.upscale.MUXERS` (copied: their modules import numpy; tests/test_cli.py keeps them equal).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
#: The run folder's weights (`tinysr.runfolder.RUN_BEST`, a standard-library leaf).
RUN_BEST = "best.safetensors"


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


def check_output_name(output: str) -> None:
    """`tinysr upscale -o`: a folder (no suffix, a trailing "/", or one that exists), or a file with an image or
    video suffix; any other suffix (out.txt) is a mistake that would otherwise become a folder of that name."""
    path = Path(output)
    suffix = path.suffix.lower()
    folder = output.endswith(("/", os.sep)) or path.is_dir()
    if suffix and suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES and not folder:
        raise TinySRError(f"-o {output}: {suffix} is neither an image suffix ({', '.join(IMAGE_SUFFIXES)}) nor a "
                          f"video one ({', '.join(VIDEO_SUFFIXES)}); for a folder of that name, create it first")


def check_upscale(args: argparse.Namespace) -> None:
    if args.model not in AUTO_FAMILY_NAMES:
        check_model(args.model, per_file=AUTO_FAMILY_NAMES)
    check_inputs(args.inputs)
    check_output_name(args.output)


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


#: `tinysr models` options that only an --openmodeldb entry takes (`tinysr.cli.openmodeldb`).
OPENMODELDB_OPTIONS = ("output", "url", "resource", "name", "author", "license", "date", "tag", "force", "trust")


def check_models(args: argparse.Namespace) -> None:
    """--openmodeldb's options without it, or beside --json, are mistakes; its model must be one `check_model`
    accepts."""
    given = [name for name in OPENMODELDB_OPTIONS if getattr(args, name) not in (None, False)]
    if args.openmodeldb is None:
        if given:
            raise TinySRError(f"--{given[0]} belongs to an OpenModelDB entry: give --openmodeldb MODEL")
        return
    if args.json:
        raise TinySRError("--json lists the table; --openmodeldb writes one entry: give one of them")
    check_model(args.openmodeldb)


#: verb -> its pre-check; a verb not named here has none (its runner checks all).
CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "upscale": check_upscale,
    "eval": check_eval,
    "export": check_export,
    "encode": check_encode,
    "train": check_train,
    "web": check_web,
    "models": check_models,
}


def weights_files(spec: str) -> list[Path]:
    """The weights file a --model or --init value names, as `tinysr.infer.load.weights_path` finds it: a file, or a
    run folder's best weights; none for a bundled name (whose digest is always checked)."""
    path = Path(spec)
    return [path / RUN_BEST] if path.is_dir() else [path] if path.is_file() else []


#: verb -> the --model / --init values its command line loads weights from.
MODEL_SPECS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "upscale": lambda args: [args.model],
    "eval": lambda args: [args.model],
    "export": lambda args: [args.model],
    "web": lambda args: list(args.model or ()),
    "train": lambda args: [args.init] if args.init else [],
}


def trust_models(args: argparse.Namespace) -> None:
    """--trust: the weights files this command names load without a digest (`tinysr.integrity.trust_files`); each
    command line replaces what an earlier one trusted (imports numpy: called after the light checks passed)."""
    if args.command not in MODEL_SPECS:
        return
    from tinysr.integrity import trust_files

    specs = MODEL_SPECS[args.command](args) if args.trust else []
    trust_files(path for spec in specs for path in weights_files(spec))


def check_args(args: argparse.Namespace) -> None:
    """Raise the first mistake the light checks find in `args`, a parsed `tinysr` command line; then note what its
    --trust vouches for."""
    check = CHECKS.get(args.command)
    if check is not None:
        check(args)
    trust_models(args)
