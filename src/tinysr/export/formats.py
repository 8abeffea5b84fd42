"""Export dispatch: a network to one of `EXPORTERS`' formats, by name (what `tinysr export --format` calls)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn

from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.export.coreml import export_coreml
from tinysr.export.ncnn import export_ncnn
from tinysr.export.numpy_export import export_numpy
from tinysr.export.onnx import export_onnx
from tinysr.export.quantize import calibration_crops, quantize_onnx
from tinysr.export.tflite import export_tflite


def export_int8(model: nn.Module, out: Path, *, calibration: str | None, seed: int) -> None:
    """int8 QDQ ONNX, calibrated on random crops of the LR images in folder `calibration`."""
    if not calibration:
        raise TinySRError("--format onnx-int8 needs --calibration FOLDER (a few LR images)")
    images = [img for _, img in decode_all(image_folder(calibration), strict=True)]
    crops = calibration_crops(images, rng=np.random.default_rng(seed))
    with tempfile.TemporaryDirectory(prefix="tinysr-export-") as tmp:
        export_onnx(model, Path(tmp) / "float.onnx")
        quantize_onnx(Path(tmp) / "float.onnx", out, crops=crops)


#: format name -> writer(model, out, *, calibration, seed).
EXPORTERS: dict[str, Callable[..., None]] = {
    "onnx": lambda model, out, **_: export_onnx(model, out),
    "onnx-int8": export_int8,
    "numpy": lambda model, out, **_: export_numpy(model, out),
    "tflite": lambda model, out, **_: export_tflite(model, out),  # LiteRT flatbuffer, NHWC
    "ncnn": lambda model, out, **_: export_ncnn(model, out),  # OUT.param + OUT.bin
    "coreml": lambda model, out, **_: export_coreml(model, out),  # OUT.mlpackage folder
}


def export_model(model: nn.Module, out: Path, *, fmt: str, calibration: str | None = None, seed: int = 0) -> None:
    """Write `model` to `out` in format `fmt` (a key of `EXPORTERS`)."""
    if fmt not in EXPORTERS:
        raise TinySRError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORTERS)}")
    EXPORTERS[fmt](model, out, calibration=calibration, seed=seed)
