"""`tinysr upscale`: image files and folders through a network.

`upscale` runs files and folders through `tinysr.infer.upscale.upscale`:
    tinysr upscale --model M INPUT... -o OUT [--scale S] [--tile 512 --overlap N] [--self-ensemble] [--device D]
                   [--force]
- OUT is a folder (created if missing). A file INPUT goes to OUT/<name>; a folder INPUT's images (recursive,
  hidden files skipped) go to OUT/<path relative to that folder>. The output format follows the input's suffix.
- An output is never an input; an existing output is overwritten only with --force.
- Grey files come out grey; alpha is kept (upscaled with MATLAB bicubic); grey with alpha comes out RGBA.
- A failing file is reported on one line naming it, the others still run; the exit status is 1 if any failed.
- --model auto (`tinysr.infer.auto`): each file gets the bundled model its content calls for (one line per file says
  which), at the scale `tinysr encode` recorded in it (else --scale, else 2), cropped to the recorded original size.
  A recorded scale without a model fails the run before any file is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from tinysr.cli.parser import ENGINES
from tinysr.data.folder import is_image_file
from tinysr.data.io import PILLOW_FORMATS, read_image, write_image
from tinysr.errors import TinySRError
from tinysr.infer import fused as fused_stage
from tinysr.infer.auto import describe_choice, inspect_source, resolve_scale, upscale_auto
from tinysr.infer.load import load_network
from tinysr.infer.upscale import network_window_fn, upscale


def list_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """([(image file, output path relative to OUT)], [one-line failures for inputs that are neither])."""
    jobs, failures = [], []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                failures.append(f"{path}: no images in this folder")
            jobs += [(p, p.relative_to(path)) for p in found]
        elif path.is_file():
            jobs.append((path, Path(path.name)))
        else:
            failures.append(f"{path}: no such file or folder")
    return jobs, failures


def output_folder(out: str) -> Path:
    """OUT as a folder that exists (created if missing), or a one-line error."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise TinySRError(f"{path}: exists and is not a folder (-o/--output names a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinySRError(f"{path}: cannot create the output folder ({exc.strerror or exc})") from None
    return path


def read_alpha(path: Path) -> np.ndarray:
    """HW uint8 alpha of an image file, upright like `read_image`'s pixels (which drop alpha).

    Hand-rolled because `tinysr.data.io.read_image` returns RGB only; it reads the same formats, with the same
    pixel limit (Pillow's default) and orientation handling.
    """
    with Image.open(path, formats=PILLOW_FORMATS) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGBA").getchannel("A"))


def read_for_upscale(path: Path) -> np.ndarray:
    """An image file as HW grey, HWC RGB or HWC RGBA uint8, following what the file holds."""
    rgb, notes = read_image(path)
    if "alpha dropped" in notes:
        return np.concatenate([rgb, read_alpha(path)[:, :, None]], axis=2)
    if "grey expanded to RGB" in notes:
        return np.ascontiguousarray(rgb[:, :, 0])
    return rgb


AUTO = "auto"


def inspect_all(sources: list[Path], *, scale: int | None) -> None:
    """--model auto: fail before any file is written if one records a scale no model has (an unreadable file is
    left to fail, named, when its turn comes)."""
    for src in sources:
        try:
            info = inspect_source(src)
        except TinySRError:
            continue
        resolve_scale(info, scale=scale)


def upscale_file(src: Path, dst: Path, model, *, tile: int | None, overlap: int | None, self_ensemble: bool,
                 device: str, fused: bool | None = None, scale: int | None = None) -> str | None:
    """Read, upscale and atomically write one image; every failure is a TinySRError naming a file.
    model None means --model auto; then returns the line saying which model it chose."""
    info = inspect_source(src) if model is None else None
    image = read_for_upscale(src)
    options = {"tile": tile, "overlap": overlap, "self_ensemble": self_ensemble, "device": device, "fused": fused}
    try:
        if info is not None:
            result = upscale_auto(image, info=info, scale=scale, **options)
            sr, note = result.image, describe_choice(info, result.model)
        else:
            sr, note = upscale(image, model, **options), None
    except TinySRError as exc:  # e.g. a grey image with --engine fused: name the file, keep going
        raise TinySRError(f"{src}: {exc}") from None
    except (RuntimeError, MemoryError) as exc:  # e.g. out of memory: name the file, keep going
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TinySRError(f"{src}: upscaling failed ({first}); try --tile 256") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_image(dst, sr)
    return note


def check_output(src: Path, dst: Path, *, inputs: set[Path], planned: set[Path], force: bool) -> None:
    """Refuse to overwrite an input, a file written earlier in this run, or (without --force) an existing file."""
    resolved = dst.resolve()
    if resolved in inputs:
        raise TinySRError(f"{dst}: is an input image; refusing to overwrite it (choose another -o folder)")
    if resolved in planned:
        raise TinySRError(f"{src}: its output {dst} is also the output of an earlier input; rename one")
    if dst.exists() and not force:
        raise TinySRError(f"{dst}: exists; pass --force to overwrite")


def load_fused_kernels_if_worth_it(sources: list[Path]) -> None:
    """--engine auto: load the compiled kernels (`tinysr.infer.fused`) when the whole batch repays their start, so that
    every image takes them; otherwise each image decides alone (`tinysr.infer.fused.worth_it`). Sizes come from the
    file headers; an unreadable file counts 0 here and fails, named, when its turn comes."""
    if not fused_stage.available() or fused_stage.loaded():
        return
    pixels = 0
    for src in sources:
        try:
            with Image.open(src) as img:
                pixels += img.width * img.height
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        if fused_stage.worth_it(pixels):
            fused_stage.load()
            return


def run(args: argparse.Namespace) -> int:
    auto = args.model == AUTO
    model, description = (None, "--model auto") if auto else load_network(args.model, scale=args.scale)
    fused = ENGINES[args.engine]
    if fused and not auto:  # fail before any file when the model or the options rule the fused path out
        try:
            network_window_fn(model, device=args.device, self_ensemble=args.self_ensemble, quantize=True, fused=True)
        except TinySRError as exc:
            raise TinySRError(f"--engine fused: {exc}") from None
    out = output_folder(args.output)
    jobs, failures = list_inputs(args.inputs)
    if auto:
        inspect_all([src for src, _ in jobs], scale=args.scale)
    if fused is None:
        load_fused_kernels_if_worth_it([src for src, _ in jobs])
    n_bad_inputs = len(failures)
    inputs, planned = {src.resolve() for src, _ in jobs}, set()
    for src, rel in tqdm(jobs, desc="upscale", unit="image", disable=not jobs):
        dst = out / rel
        try:
            check_output(src, dst, inputs=inputs, planned=planned, force=args.force)
            planned.add(dst.resolve())
            note = upscale_file(src, dst, model, tile=args.tile, overlap=args.overlap,
                                self_ensemble=args.self_ensemble, device=args.device, fused=fused, scale=args.scale)
            if note:
                tqdm.write(note)
        except (TinySRError, OSError) as exc:
            failures.append(str(exc) if isinstance(exc, TinySRError) else f"{src}: {exc}")
    done = len(jobs) - (len(failures) - n_bad_inputs)
    factor = "" if auto else f" x{model.config.scale}"
    print(f"upscaled {done} of {len(jobs)} images{factor} with {description} into {out}")
    for line in failures:
        print(f"tinysr: failed: {line}", file=sys.stderr)
    if failures:
        print(f"tinysr: {len(failures)} failure(s)", file=sys.stderr)
    return 1 if failures else 0
