"""One parity harness: every bundled model at its scale, on every runtime that executes here, against `tinysr.upscale`.

Parity rule: after rounding half to even and clipping to uint8 (as tinysr does), at most 1 grey level of difference,
on at most 0.1 % of the pixels (a pixel differs when any of its channels does). Two real images (small crops of Set5
and Set14, of odd and even sizes), whole, so the borders are in. The reference is `tinysr.upscale(image, model)`
with its defaults; "torch" is the same call with `fused=False`, "numba" with `fused=True` (the compiled kernels
apply to Y-only ReLU tiny nets and compact nets, so EDSR has no "numba" case). Every family runs on the phone
formats (LiteRT, ncnn: `tinysr.export.phone_form.FORMS`). Core ML does not run on Linux: see
tests/test_phone_export.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import tinysr
import tinysr.runtime as numpy_runtime
from tinysr.data.io import read_image
from tinysr.export.ncnn import export_ncnn, ncnn_net, run_ncnn
from tinysr.export.numpy_export import export_numpy
from tinysr.export.onnx import export_onnx, onnx_session, onnx_window_fn
from tinysr.export.tflite import export_tflite, run_tflite, tflite_interpreter
from tinysr.infer.load import bundled_names, load_network

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = ("tiny-1k-x2", "tiny-1k-x3", "tiny-1k-x4", "tiny-5k-x2", "edsr-tiny-x2", "tiny-1k-x2-jpeg",
          "tiny-5k-x2-jpeg", "tiny-1k-x4-jpeg", "tiny-1k-x2-jpeg-low", "tiny-1k-x2-jpeg-high", "tiny-5k-x2-jpeg-low",
          "tiny-5k-x2-jpeg-high", "tiny-1k-x4-jpeg-low", "tiny-1k-x4-jpeg-high", "compact-5k-x2", "compact-5k-x2-jpeg",
          "tiny-5k-x4", "tiny-5k-x3", "compact-5k-x4", "tiny-5k-x4-jpeg", "tiny-5k-x4-jpeg-high",
          "tiny-5k-x4-jpeg-low")
RUNTIMES = ("torch", "numba", "onnxruntime", "numpy", "litert", "ncnn")
CASES = [(m, r) for m in MODELS for r in RUNTIMES if not (r == "numba" and m.startswith("edsr"))]
MAX_LEVELS, MAX_FRACTION = 1, 0.001


def quantize(sr: np.ndarray) -> np.ndarray:
    """HWC float 0..255 -> uint8, rounded half to even and clipped (tinysr's rule)."""
    return np.clip(np.round(sr), 0, 255).astype(np.uint8)


def parity(out: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """(largest difference in grey levels, fraction of pixels that differ) of two HWC uint8 images."""
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    return int(diff.max()), float(np.any(diff > 0, axis=2).mean())


def _exported(export: Callable, model, path: Path) -> Path:
    export(model, path)
    return path


def runner(runtime: str, model, tmp: Path) -> Callable[[np.ndarray], np.ndarray]:
    """HWC RGB uint8 -> HWC uint8 at the model's scale, through `runtime`."""
    if runtime in ("torch", "numba"):
        return lambda img: tinysr.upscale(img, model, fused=runtime == "numba")
    if runtime == "onnxruntime":
        run = onnx_window_fn(onnx_session(_exported(export_onnx, model, tmp / "m.onnx"), threads=1))
        return lambda img: quantize(run(img))
    if runtime == "numpy":
        loaded = numpy_runtime.load(_exported(export_numpy, model, tmp / "m.npz"))
        return lambda img: numpy_runtime.upscale(img, loaded, fused=False)
    if runtime == "litert":
        interpreter = tflite_interpreter(_exported(export_tflite, model, tmp / "m.tflite"))
        return lambda img: quantize(run_tflite(interpreter, img))
    net = ncnn_net(_exported(export_ncnn, model, tmp / "m.param"))
    return lambda img: quantize(run_ncnn(net, img))


@pytest.fixture(scope="module")
def images(data_dir) -> list[np.ndarray]:
    baby = read_image(data_dir / "Set5" / "baby.png")[0][100:148, 200:264]
    zebra = read_image(data_dir / "Set14" / "zebra.png")[0][40:77, 60:113]  # odd sizes, stripes to the border
    return [baby, zebra]


@pytest.fixture(scope="module")
def references(images) -> dict[str, list[np.ndarray]]:
    return {name: [tinysr.upscale(img, load_network(name, scale=None)[0]) for img in images] for name in MODELS}


def test_every_bundled_model_is_in_the_harness():
    assert sorted(MODELS) == sorted(bundled_names())


@pytest.mark.parametrize(("name", "runtime"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_runtime_matches_upscale(name, runtime, images, references, tmp_path):
    model, _ = load_network(name, scale=None)
    run = runner(runtime, model.to_torch(), tmp_path)
    for img, ref in zip(images, references[name]):
        out = run(img)
        assert out.shape == (img.shape[0] * model.config.scale, img.shape[1] * model.config.scale, 3)
        levels, fraction = parity(out, ref)
        assert levels <= MAX_LEVELS and fraction <= MAX_FRACTION, (name, runtime, levels, fraction)
