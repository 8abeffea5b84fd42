"""MATLAB-exact bicubic ``imresize`` (numpy) and its batched torch twin.

Reproduces MATLAB's ``imresize(img, scale)`` / ``imresize(img, [rows cols])`` with the default method
(bicubic, Keys a = -0.5, antialiasing on) as of R2015b:

* output size ``ceil(scale * in)`` per axis; given an output shape, the scale per axis is ``out / in``;
* antialiasing when downscaling: the kernel is stretched by ``1 / scale`` (``h(x) = scale * k(scale * x)``);
* half-sample symmetric padding (MATLAB's ``contributions`` with mirror indices ``[1:n, n:-1:1]``), weights
  normalised per output sample and all-zero taps dropped;
* separable 1-D passes, the axis with the smaller scale first (MATLAB's ``[~, order] = sort(scale)``, stable;
  the float path, where the order only moves float rounding, takes columns first whenever rows are upscaled);
* a uint8 image is rounded (half away from zero) and clipped to 0..255 after each pass, as MATLAB's uint8 path.

Convention: images are HxW (grey) or HxWxC (any channel count, e.g. RGB) numpy arrays.
* **uint8 path**: uint8 in, uint8 out; matches ``imresize(img_uint8, ...)`` bit for bit.
* **float path**: any float dtype in, float64 out, no rounding and no clipping. On 0..255 values
  ``imresize(img.astype(np.float64), ...)`` equals MATLAB's ``imresize(double(img) / 255, ...) * 255`` up to float
  rounding, and ``to_uint8`` of it reproduces what ``im2uint8`` / ``imwrite`` make of MATLAB's double result.

``IMRESIZE_VERSION`` changes whenever outputs change; prepared-data caches key on it.

`imresize` reads as its steps (like ResizeRight's ``resize``): 1. scale and output shape; 2. per axis, the
contributions; 3. the order of the passes; 4. each pass; 5. MATLAB's rounding. The banded-BLAS code that runs
steps 4 and 5 fast lives in the private `tinysr._resize_blas`.

Every bicubic in the package, and why each exists (all but Pillow's reproduce MATLAB's; tests tie each to this one):
* `imresize` here: the reference, numpy, uint8 and float paths, any scale; data preparation and evaluation.
* `imresize_matrices` / `imresize_torch` here: the float path as one dense matrix per axis; torch, batched, on GPU
  (the on-the-fly degradation of `tinysr.data.gpu_sampler`), and torch-free for the NumPy runtime.
* `tinysr.models.ops.bicubic_upsample`: the tiny nets' anchor in torch, integer upscales as one 5-tap conv per
  axis (`phase_taps`), linear in the image size where the dense matrices are quadratic.
* `tinysr.infer.fused` (Numba): the same `phase_taps`, fused with the residual and the rounding in one pass.
* `tinysr.export.runtime.bicubic_upscale`: the anchor op of the NumPy runtime, via `imresize_matrices`.
* `tinysr.data.degrade.pil_bicubic`: Pillow's (not MATLAB's), a degradation kept for comparison only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tinysr import _resize_blas
from tinysr.errors import TinySRError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it, never at module import: the torch-free NumPy runtime
# (`tinysr.export.runtime`) uses `imresize_matrices` from here.

IMRESIZE_VERSION = "1"
KERNEL_WIDTH = 4.0  # bicubic support in input samples, before antialias stretching


# ---------------------------------------------------------------- kernel and contributions (MATLAB's helpers)


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel, a = -0.5, written exactly as MATLAB's ``cubic`` (float64)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    inner = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((1 < absx) & (absx <= 2))
    return inner + outer


@functools.lru_cache(maxsize=8)
def phase_taps(scale: int) -> tuple[tuple[tuple[int, float], ...], ...]:
    """MATLAB bicubic upscaling by an integer `scale` as periodic taps: per output phase p (output ``i * scale + p``),
    the non-zero ``(k, cubic(d_p - k))`` for input offsets k = -2..2, ``d_p = (p + 0.5) / scale - 0.5`` (float64).
    On MATLAB's half-sample-symmetric padding they reproduce `imresize` exactly (Keys' kernel sums to 1)."""
    offsets = (np.arange(scale) + 0.5) / scale - 0.5
    weights = cubic(offsets[:, None] - np.arange(-2, 3)[None, :])
    return tuple(tuple((k - 2, float(w)) for k, w in enumerate(row) if w != 0.0) for row in weights)


@functools.lru_cache(maxsize=64)
def contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample, the weights and 0-based input indices along one axis (MATLAB's ``contributions``).

    Returns read-only ``(weights, indices)``, both shaped (out_len, taps): float64 weights that sum to 1 per row,
    int64 indices already folded by half-sample symmetric padding. Cached: callers must not modify them.
    """
    antialias = scale < 1
    kernel_width = KERNEL_WIDTH / scale if antialias else KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)  # MATLAB's 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    n_taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(n_taps, dtype=np.float64)  # 1-based, may fall outside 1..in_len
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if antialias else cubic(distance)
    weights = weights / _sequential_row_sum(weights)[:, None]
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    weights, indices = np.ascontiguousarray(weights[:, keep]), np.ascontiguousarray(indices[:, keep])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


def _sequential_row_sum(weights: np.ndarray) -> np.ndarray:
    """Row sums added left to right, as MATLAB's ``sum`` does on a short row (numpy's ``sum`` is pairwise)."""
    total = weights[:, 0].copy()
    for tap in range(1, weights.shape[1]):
        total += weights[:, tap]
    return total


# ---------------------------------------------------------------- rounding


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip to 0..255, as MATLAB's double -> uint8 conversion (``im2uint8`` of a
    0..1 double image scaled by 255). Input: float array in 0..255 space; output: uint8, same shape; NaN -> 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.uint8)
    flat, flat_out, step = x.reshape(-1), out.reshape(-1), 2**17  # ~1 MB blocks: temporaries stay in cache
    for start in range(0, flat.size, step):
        # floor(x + 0.5) rounds half away from zero for x >= 0 but for one float, 0.5 - 2^-54, whose sum with 0.5
        # rounds up to 1.0; adding the float just below 0.5 instead is exact for it and still sends every k + 0.5
        # up (the sum k + 1 - 2^-54 rounds to k + 1). Negative x clip to 0 either way.
        shifted = np.add(flat[start : start + step], 0.49999999999999994)
        np.fmax(shifted, 0, out=shifted)  # fmax/fmin, unlike clip, send NaN to the bound: NaN -> 0 as MATLAB
        np.fmin(shifted, 255, out=shifted)
        np.copyto(flat_out[start : start + step], shifted, casting="unsafe")  # truncates: floor on 0..255
    return out


# ---------------------------------------------------------------- argument checking and sizes


def _plan(in_shape: tuple[int, int], scale, output_shape) -> tuple[tuple[float, float], tuple[int, int]]:
    """Scale and output length per axis (rows, cols), MATLAB's rules; raises TinySRError on impossible options."""
    if (scale is None) == (output_shape is None):
        raise TinySRError("imresize: give exactly one of scale and output_shape")
    if output_shape is not None:
        shape = _pair(output_shape, "output_shape")
        if not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
            raise TinySRError(f"imresize: output_shape must be two positive ints, got {output_shape!r}")
        out = (int(shape[0]), int(shape[1]))
        return (out[0] / in_shape[0], out[1] / in_shape[1]), out
    scales = _pair(scale, "scale")
    if not all(_is_real(s) and math.isfinite(s) and s > 0 for s in scales):
        raise TinySRError(f"imresize: scale must be a positive finite number (or one per axis), got {scale!r}")
    scales = (float(scales[0]), float(scales[1]))
    return scales, (math.ceil(scales[0] * in_shape[0]), math.ceil(scales[1] * in_shape[1]))


def _pair(value, name: str) -> tuple:
    if isinstance(value, Sequence) or isinstance(value, np.ndarray):
        if len(value) != 2:
            raise TinySRError(f"imresize: {name} needs one value per axis (rows, cols), got {value!r}")
        return tuple(value)
    return (value, value)


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray):
        raise TinySRError(f"imresize: expected a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3) or img.size == 0:
        raise TinySRError(f"imresize: expected a non-empty HxW or HxWxC image, got shape {img.shape}")
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TinySRError(f"imresize: expected uint8 or float pixels, got dtype {img.dtype}")


# ---------------------------------------------------------------- numpy imresize


def _rows_first(scales: tuple[float, float], uint8_path: bool) -> bool:
    """Step 3: whether rows are resized before columns.

    uint8 path: the axis with the smaller scale first, ties rows first (MATLAB's stable ``sort(scale)``); the order
    decides the rounding there. Float path, where it only moves float rounding: rows first unless rows are upscaled
    (then columns go first: fewer samples through the dearer column pass).
    """
    return _axis_order(scales)[0] == 0 if uint8_path else scales[0] <= 1


def _axis_order(scales: tuple[float, float]) -> list[int]:
    """MATLAB's pass order: the axis with the smaller scale first; ties keep rows first (a stable sort)."""
    return sorted((0, 1), key=lambda axis: scales[axis])


def imresize(img: np.ndarray, scale=None, *, output_shape=None) -> np.ndarray:
    """MATLAB ``imresize`` (bicubic, antialiased): uint8 HxW[xC] -> uint8, float HxW[xC] -> float64.

    ``scale`` is a positive number or one per axis (rows, cols); ``output_shape`` is (rows, cols). Exactly one.
    A non-finite sample of the float path spreads to the outputs of its bands.
    """
    _check_image(img)
    # 1. scale and output shape per axis (MATLAB's rules)
    scales, out_shape = _plan(img.shape[:2], scale, output_shape)
    uint8_path = img.dtype == np.uint8
    channels = img.shape[2] if img.ndim == 3 else 1
    # 2. per axis, the kernel's weights and input indices: `contributions` (antialiasing, symmetric padding),
    #    which the fast path turns into band matrices, cached per shape
    # 3. the order of the passes
    rows_first = _rows_first(scales, uint8_path)
    # 4. each pass, a 1-D resize along its axis, as banded matrix products on blocks of rows (`tinysr._resize_blas`)
    # 5. rounding as MATLAB: the uint8 path rounds (`to_uint8`) after each pass, the float path never
    x = np.ascontiguousarray(img if uint8_path else img.astype(np.float64, copy=False))
    out = np.empty((out_shape[0], out_shape[1] * channels), np.uint8 if uint8_path else np.float64)
    _resize_blas.resize_table(x.reshape(img.shape[0], -1), out, in_shape=img.shape[:2], scales=scales,
                              channels=channels, rows_first=rows_first, contributions=contributions,
                              to_uint8=to_uint8)
    return out.reshape(*out_shape, channels) if img.ndim == 3 else out.reshape(out_shape)


# ---------------------------------------------------------------- torch imresize (float path, batched)


@functools.lru_cache(maxsize=64)
def _weight_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The contributions as a dense (out_len, in_len) float64 matrix (mirrored taps add up)."""
    weights, indices = contributions(in_len, out_len, scale)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], indices.shape)
    np.add.at(matrix, (rows, indices), weights)
    matrix.flags.writeable = False
    return matrix


def imresize_matrices(in_shape: tuple[int, int], scale=None, *, output_shape=None) -> list[tuple[int, np.ndarray]]:
    """The float-path ``imresize`` of an (rows, cols) image as linear maps: [(axis, (out x in) float64 matrix)] in
    MATLAB's axis order; apply ``matrix @ x`` along each axis in turn. Torch-free (the NumPy runtime uses it)."""
    scales, out_shape = _plan(tuple(in_shape), scale, output_shape)
    return [(axis, _weight_matrix(in_shape[axis], out_shape[axis], scales[axis])) for axis in _axis_order(scales)]


def imresize_torch(x: torch.Tensor, scale=None, *, output_shape=None) -> torch.Tensor:
    """Batched float-path ``imresize`` for BxCxHxW float tensors (any float dtype, CPU or CUDA).

    Computes in the input dtype with one (out x in) weight-matrix product per axis, the same contributions and
    axis order as ``imresize``; no rounding or clipping. In float64 it agrees with ``imresize`` to ~1e-12.
    """
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.numel() == 0:
        raise TinySRError(f"imresize_torch: expected a non-empty BxCxHxW tensor, got {getattr(x, 'shape', type(x))}")
    if not x.is_floating_point():
        raise TinySRError(f"imresize_torch: expected a float tensor, got dtype {x.dtype}")
    for axis, matrix in imresize_matrices(tuple(x.shape[2:]), scale, output_shape=output_shape):
        matrix = torch.tensor(matrix, dtype=x.dtype, device=x.device)
        x = torch.matmul(matrix, x) if axis == 0 else torch.matmul(x, matrix.T)
    return x
