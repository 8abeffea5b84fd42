"""The deployment commands: `tinysr upscale`, `tinysr models`, `tinysr export`.

Only this module (and cli.py) sees argparse. `upscale` runs files and folders through `tinysr.infer.upscale.upscale`:
    tinysr upscale --model M INPUT... -o OUT [--scale S] [--tile 512 --overlap N] [--self-ensemble] [--device D]
                   [--force]
- OUT is a folder (created if missing). A file INPUT goes to OUT/<name>; a folder INPUT's images (recursive,
  hidden files skipped) go to OUT/<path relative to that folder>. The output format follows the input's suffix.
- An output is never an input; an existing output is overwritten only with --force.
- Grey files come out grey; alpha is kept (upscaled with MATLAB bicubic); grey with alpha comes out RGBA.
- A failing file is reported on one line naming it, the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from tinysr.cli.types import int_at_least
from tinysr.errors import TinySRError

if TYPE_CHECKING:  # numpy is imported where used: `tinysr --help` imports neither numpy nor torch
    import numpy as np

SCALES = (2, 3, 4)
EXPORT_FORMATS = ("onnx", "onnx-int8", "numpy")


# ---------------------------------------------------------------------------------------------------- upscale


#: The default tile side: memory bounded on any image size, and on 2 cores the fastest CPU setting measured
#: (benchmarks/upscale.py: one 512 tile per core against the whole 1920x1080 frame at once).
DEFAULT_TILE = 512
#: --engine -> `tinysr.upscale(..., fused=)`: None picks the fused kernels where they apply (`tinysr.infer.fused`)
ENGINES = {"auto": None, "torch": False, "fused": True}


def add_upscale_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale image files and folders with a network")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (created if missing)")
    p.add_argument("--model", required=True, help="a weights file, a run folder, or a bundled model (tinysr models)")
    p.add_argument("--scale", type=int, choices=SCALES, help="check that the model upscales by this factor")
    p.add_argument("--tile", type=int_at_least(1), default=DEFAULT_TILE,
                   help=f"tile side in LR pixels (default {DEFAULT_TILE}): bounds memory, and tiles run one per core; "
                        "the output does not depend on it")
    p.add_argument("--overlap", type=int_at_least(0),
                   help="LR context per tile side; default: the receptive radius (exact)")
    p.add_argument("--self-ensemble", action="store_true", help="average the 8 flips/rotations (8x slower)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--engine", choices=tuple(ENGINES), default="auto",
                   help="fused: Y-only tiny nets as compiled CPU kernels (needs Numba: pip install 'tinysr[fast]'; "
                        "same pixels up to float rounding, ~2x faster, ~1 s to start); torch: always torch; auto "
                        "(default): fused where it applies, Numba is installed and the batch repays the start "
                        "(about 12 megapixels in all)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def list_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """([(image file, output path relative to OUT)], [one-line failures for inputs that are neither])."""
    from tinysr.data.folder import is_image_file

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
    import numpy as np
    from PIL import Image, ImageOps

    from tinysr.data.io import PILLOW_FORMATS

    with Image.open(path, formats=PILLOW_FORMATS) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGBA").getchannel("A"))


def read_for_upscale(path: Path) -> np.ndarray:
    """An image file as HW grey, HWC RGB or HWC RGBA uint8, following what the file holds."""
    import numpy as np

    from tinysr.data.io import read_image

    rgb, notes = read_image(path)
    if "alpha dropped" in notes:
        return np.concatenate([rgb, read_alpha(path)[:, :, None]], axis=2)
    if "grey expanded to RGB" in notes:
        return np.ascontiguousarray(rgb[:, :, 0])
    return rgb


def upscale_file(src: Path, dst: Path, model, *, tile: int | None, overlap: int | None, self_ensemble: bool,
                 device: str, fused: bool | None = None) -> None:
    """Read, upscale and atomically write one image; every failure is a TinySRError naming a file."""
    from tinysr.data.io import write_image
    from tinysr.infer.upscale import upscale

    image = read_for_upscale(src)
    try:
        sr = upscale(image, model, tile=tile, overlap=overlap, self_ensemble=self_ensemble, device=device,
                     fused=fused)
    except TinySRError as exc:  # e.g. a grey image with --engine fused: name the file, keep going
        raise TinySRError(f"{src}: {exc}") from None
    except (RuntimeError, MemoryError) as exc:  # e.g. out of memory: name the file, keep going
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TinySRError(f"{src}: upscaling failed ({first}); try --tile 256") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_image(dst, sr)


def check_output(src: Path, dst: Path, *, inputs: set[Path], planned: set[Path], force: bool) -> None:
    """Refuse to overwrite an input, a file written earlier in this run, or (without --force) an existing file."""
    resolved = dst.resolve()
    if resolved in inputs:
        raise TinySRError(f"{dst}: is an input image; refusing to overwrite it (choose another -o folder)")
    if resolved in planned:
        raise TinySRError(f"{src}: its output {dst} is also the output of an earlier input; rename one")
    if dst.exists() and not force:
        raise TinySRError(f"{dst}: exists; pass --force to overwrite")


def load_network_for_cli(spec: str, *, scale: int | None):
    """`tinysr.infer.load.load_network`, with an unknown-model message that lists only networks (no bicubic)."""
    from tinysr.infer.load import bundled_names, load_network, weights_path

    if weights_path(spec) is None and spec not in bundled_names():
        known = ", ".join(bundled_names()) or "none bundled yet"
        raise TinySRError(f"unknown model {spec!r}: give a weights file, a run folder, or a bundled model ({known})")
    return load_network(spec, scale=scale)


def load_fused_kernels_if_worth_it(sources: list[Path]) -> None:
    """--engine auto: load the compiled kernels (`tinysr.infer.fused`) when the whole batch repays their start, so that
    every image takes them; otherwise each image decides alone (`tinysr.infer.fused.worth_it`). Sizes come from the
    file headers; an unreadable file counts 0 here and fails, named, when its turn comes."""
    from PIL import Image

    from tinysr.infer import fused

    if not fused.available() or fused.loaded():
        return
    pixels = 0
    for src in sources:
        try:
            with Image.open(src) as img:
                pixels += img.width * img.height
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        if fused.worth_it(pixels):
            fused.load()
            return


def run_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    model, description = load_network_for_cli(args.model, scale=args.scale)
    fused = ENGINES[args.engine]
    if fused:  # fail before any file when the model or the options rule the fused path out
        from tinysr.infer.upscale import network_window_fn

        try:
            network_window_fn(model, device=args.device, self_ensemble=args.self_ensemble, quantize=True, fused=True)
        except TinySRError as exc:
            raise TinySRError(f"--engine fused: {exc}") from None
    out = output_folder(args.output)
    jobs, failures = list_inputs(args.inputs)
    if fused is None:
        load_fused_kernels_if_worth_it([src for src, _ in jobs])
    n_bad_inputs = len(failures)
    inputs, planned = {src.resolve() for src, _ in jobs}, set()
    for src, rel in tqdm(jobs, desc="upscale", unit="image", disable=not jobs):
        dst = out / rel
        try:
            check_output(src, dst, inputs=inputs, planned=planned, force=args.force)
            planned.add(dst.resolve())
            upscale_file(src, dst, model, tile=args.tile, overlap=args.overlap, self_ensemble=args.self_ensemble,
                         device=args.device, fused=fused)
        except (TinySRError, OSError) as exc:
            failures.append(str(exc) if isinstance(exc, TinySRError) else f"{src}: {exc}")
    done = len(jobs) - (len(failures) - n_bad_inputs)
    print(f"upscaled {done} of {len(jobs)} images x{model.config.scale} with {description} into {out}")
    for line in failures:
        print(f"tinysr: failed: {line}", file=sys.stderr)
    if failures:
        print(f"tinysr: {len(failures)} failure(s)", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------------- models


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the bundled pretrained models")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def run_models(args: argparse.Namespace) -> int:
    from tinysr.pretrained import read_table

    rows = read_table()
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no bundled models yet; pass a weights file or a run folder to --model")
        return 0
    print(f"{'name':<24} {'scale':>5} {'params':>9} {'bytes':>9}  PSNR (protocol)")
    for r in rows:
        psnr = ", ".join(f"{k} {v:.2f}" for k, v in r.psnr.items())
        print(f"{r.name:<24} {'x' + str(r.scale):>5} {r.params:>9,} {r.bytes:>9,}  {psnr} ({r.protocol})")
    return 0


# ---------------------------------------------------------------------------------------------------- export


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a network to ONNX (float or int8) or to the NumPy runtime")
    p.add_argument("output", metavar="OUT", help="the file to write (.onnx or .npz)")
    p.add_argument("--model", required=True, help="a weights file, a run folder, or a bundled model")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--scale", type=int, choices=SCALES, help="check that the model upscales by this factor")
    p.add_argument("--calibration", metavar="FOLDER", help="LR images to calibrate int8 on (onnx-int8 only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration crops")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def export_model(model, out: Path, *, fmt: str, calibration: str | None, seed: int) -> None:
    """Write `model` to `out` in format `fmt` (one of EXPORT_FORMATS)."""
    import tempfile

    import numpy as np

    from tinysr.export.numpy_export import export_numpy
    from tinysr.export.onnx import export_onnx

    if fmt == "numpy":
        return export_numpy(model, out)
    if fmt == "onnx":
        return export_onnx(model, out)
    from tinysr.data.folder import decode_all, image_folder
    from tinysr.export.quantize import calibration_crops, quantize_onnx

    images = [img for _, img in decode_all(image_folder(calibration), strict=True)]
    crops = calibration_crops(images, rng=np.random.default_rng(seed))
    with tempfile.TemporaryDirectory(prefix="tinysr-export-") as tmp:
        export_onnx(model, Path(tmp) / "float.onnx")
        quantize_onnx(Path(tmp) / "float.onnx", out, crops=crops)


def run_export(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.format == "onnx-int8" and not args.calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    if out.exists() and not args.force:
        raise TinySRError(f"{out}: exists; pass --force to overwrite")
    if not out.parent.is_dir():
        raise TinySRError(f"{out.parent}: no such folder for {out.name}")
    model, description = load_network_for_cli(args.model, scale=args.scale)
    export_model(model, out, fmt=args.format, calibration=args.calibration, seed=args.seed)
    print(f"wrote {out} ({args.format}, {out.stat().st_size:,} bytes) from {description}")
    return 0
