"""Export dispatch: a network to one of `EXPORTERS`' formats, by name (what `tinysr export --format` calls), in one of
the format's conventions (`tinysr.export.apps.CONVENTIONS`: tinysr's own, or an app's), written into a stage beside
OUT and published only when whole, by the rules of `tinysr.export.destination`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from torch import nn

from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.export.apps import check_app_file, check_convention
from tinysr.export.coreml import export_coreml
from tinysr.export.destination import check_destination, export_files, publish, staging
from tinysr.export.ncnn import export_ncnn
from tinysr.export.numpy_export import export_numpy
from tinysr.export.onnx import export_onnx
from tinysr.export.quantize import calibration_crops, quantize_onnx
from tinysr.export.spandrel import export_spandrel
from tinysr.export.tflite import export_tflite


def export_int8(model: nn.Module, out: Path, *, calibration: str | None, seed: int, **_: object) -> None:
    """int8 QDQ ONNX, calibrated on random crops of the LR images in folder `calibration`."""
    if not calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    images = [img for _, img in decode_all(image_folder(calibration), strict=True)]
    crops = calibration_crops(images, rng=np.random.default_rng(seed))
    with tempfile.TemporaryDirectory(prefix="tinysr-export-") as tmp:
        export_onnx(model, Path(tmp) / "float.onnx")
        quantize_onnx(Path(tmp) / "float.onnx", out, crops=crops)


#: format name -> writer(model, out, *, calibration, seed, convention); only onnx and ncnn take a convention.
EXPORTERS: dict[str, Callable[..., None]] = {
    "onnx": lambda model, out, convention, **_: export_onnx(model, out, convention=convention),  # or chaiNNer's
    "onnx-int8": export_int8,
    "numpy": lambda model, out, **_: export_numpy(model, out),
    "tflite": lambda model, out, **_: export_tflite(model, out),  # LiteRT flatbuffer, NHWC
    "ncnn": lambda model, out, convention, **_: export_ncnn(model, out, convention=convention),  # or Upscayl's
    "coreml": lambda model, out, **_: export_coreml(model, out),  # NAME.mlpackage folder
    "spandrel": lambda model, out, **_: export_spandrel(model, out),  # a compact net's state dict, spandrel's keys
}


def export_model(model: nn.Module, out: str | os.PathLike, *, fmt: str, calibration: str | None = None,
                 seed: int = 0, force: bool = False, convention: str = "tinysr",
                 sources: Mapping[str, str | os.PathLike | None] | None = None) -> list[Path]:
    """Write `model` to `out` in format `fmt` (a key of `EXPORTERS`) and `convention` ("tinysr", or "chainner" for
    onnx, "upscayl" for ncnn); returns the files written (ncnn: two).

    Nothing is written unless every file passes `destination.check_destination` (`force`: replace files of the
    format's own kind; `sources`: option -> path the export reads, never replaced). An OSError (a read-only folder,
    a full disk) is one line naming OUT, and leaves no file behind."""
    if fmt not in EXPORTERS:
        raise TinySRError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORTERS)}")
    check_convention(fmt, convention)
    files = export_files(out, fmt)
    check_app_file(convention, files[0], model)
    sources = {**(sources or {}), "--calibration": calibration}
    check_destination(files, fmt=fmt, force=force, sources=sources)
    try:
        with staging(files[0]) as stage:
            EXPORTERS[fmt](model, stage / files[0].name, calibration=calibration, seed=seed, convention=convention)
            for path in files:
                publish(stage / path.name, path, replace=force, fmt=fmt)
    except OSError as exc:
        raise TinySRError(f"cannot write {files[0]}: {exc.strerror or exc}") from None
    return files
