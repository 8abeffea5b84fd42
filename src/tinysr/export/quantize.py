"""Static int8 quantisation of an exported ONNX model (QDQ format), calibrated on LR crops.

`onnxruntime.quantization.quantize_static` inserts QuantizeLinear/DequantizeLinear pairs around every conv: weights
int8 (one scale per tensor), activations uint8, ranges from MinMax calibration over a few LR crops. Per-tensor on
purpose: for the 963-parameter EDSR (BSD100 x2, first 25 images, standard protocol) per-channel weight scales cost
2.05 dB against float, per-tensor 0.04 dB (benchmarks/RESULTS.md). The quantised
graph keeps the float interface (`lr` NCHW float32 RGB 0..255 in, `sr` out), so every ONNX consumer runs it
unchanged; only the convolutions run in int8.

Calibration crops: HWC RGB uint8 LR images, cut into `size` x `size` crops at positions from an explicit
`np.random.Generator` (deterministic for a seed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.export.onnx import DIGEST, INPUT_NAME, graph_digest

CROP_SIZE = 64
CROPS_PER_IMAGE = 4


def calibration_crops(images: Iterable[np.ndarray], *, rng: np.random.Generator, size: int = CROP_SIZE,
                      per_image: int = CROPS_PER_IMAGE) -> list[np.ndarray]:
    """`per_image` random `size` x `size` crops (smaller images: the whole image) of each HWC RGB uint8 image."""
    crops = []
    for img in images:
        h, w = img.shape[:2]
        ch, cw = min(size, h), min(size, w)
        for _ in range(per_image):
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crops.append(np.ascontiguousarray(img[y:y + ch, x:x + cw]))
    return crops


class _CropReader:
    """The `CalibrationDataReader` protocol over HWC uint8 crops: yields {"lr": 1x3xHxW float32} feeds."""

    def __init__(self, crops: Sequence[np.ndarray]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = (
            {INPUT_NAME: np.ascontiguousarray(c.transpose(2, 0, 1)[None], dtype=np.float32)} for c in crops)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, *, crops: Sequence[np.ndarray]) -> None:
    """Quantise the float ONNX file `src` to int8 QDQ at `dst` (atomic), calibrated on `crops` (HWC RGB uint8)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not crops:
        raise TinySRError("int8 quantisation needs at least one calibration image")
    reader = type("CropReader", (_CropReader, CalibrationDataReader), {})(crops)
    with tempfile.TemporaryDirectory(prefix="tinysr-quant-") as tmp:
        prepared, out = Path(tmp) / "model.pre.onnx", Path(tmp) / "model.int8.onnx"
        # Graph clean-up and ONNX shape inference, as ORT recommends. ORT's extra symbolic pass is skipped: these
        # graphs need no symbolic dims, and where it gives up (as on an earlier export's Resize) it leaves
        # sym_shape_infer_temp.onnx in the caller's working directory.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=False,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        _copy_metadata(src, out)
        atomic_write_bytes(dst, out.read_bytes())


def _copy_metadata(src: str | os.PathLike, dst: Path) -> None:
    """Carry the tinysr metadata_props (config, scale, convention) over to the quantised file."""
    import onnx

    source, target = onnx.load(str(src)), onnx.load(str(dst))
    present = {p.key for p in target.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in present and prop.key != DIGEST:  # the float graph's digest: the int8 graph gets its own
            target.metadata_props.add(key=prop.key, value=prop.value)
    target.metadata_props.add(key="tinysr_quantization", value="int8 QDQ, per-tensor weights, MinMax calibration")
    target.metadata_props.add(key=DIGEST, value=graph_digest(target))
    onnx.save(target, str(dst))
