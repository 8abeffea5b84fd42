"""MATLAB-exact bicubic ``imresize`` (numpy) and its batched torch twin.

Reproduces MATLAB's ``imresize(img, scale)`` / ``imresize(img, [rows cols])`` with the default method
(bicubic, Keys a = -0.5, antialiasing on) as of R2015b:

* output size ``ceil(scale * in)`` per axis; given an output shape, the scale per axis is ``out / in``;
* antialiasing when downscaling: the kernel is stretched by ``1 / scale`` (``h(x) = scale * k(scale * x)``);
* half-sample symmetric padding (MATLAB's ``contributions`` with mirror indices ``[1:n, n:-1:1]``), weights
  normalised per output sample and all-zero taps dropped;
* separable 1-D passes, the axis with the smaller scale first (MATLAB's ``[~, order] = sort(scale)``, stable);
* a uint8 image is rounded (half away from zero) and clipped to 0..255 after each pass, as MATLAB's uint8 path.

Convention: images are HxW (grey) or HxWxC (any channel count, e.g. RGB) numpy arrays.
* **uint8 path**: uint8 in, uint8 out; matches ``imresize(img_uint8, ...)`` bit for bit.
* **float path**: any float dtype in, float64 out, no rounding and no clipping. On 0..255 values
  ``imresize(img.astype(np.float64), ...)`` equals MATLAB's ``imresize(double(img) / 255, ...) * 255`` up to float
  rounding, and ``to_uint8`` of it reproduces what ``im2uint8`` / ``imwrite`` make of MATLAB's double result.

``IMRESIZE_VERSION`` changes whenever outputs change; prepared-data caches key on it.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tinysr.errors import TinySRError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it, never at module import: the torch-free NumPy runtime
# (`tinysr.runtime`) uses `imresize_matrices` from here.

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
    for block, target in _blocks(x.reshape(-1), out.reshape(-1)):
        rounded = np.rint(block)  # half to even ...
        with np.errstate(invalid="ignore"):  # inf - inf: not a tie either way
            rounded += np.subtract(block, rounded) == 0.5  # ... then ties go up (negative ties get clipped to 0)
        np.fmax(rounded, 0, out=rounded)  # fmax/fmin, unlike clip, send NaN to the bound: NaN -> 0 as MATLAB
        target[...] = np.fmin(rounded, 255, out=rounded)
    return out


def _blocks(*arrays: np.ndarray, size: int = 2**17):
    """Matching ~1 MB slices along axis 0. Elementwise chains run block by block: temporaries stay in cache and
    are never fresh full-size allocations, whose page faults cost more than the arithmetic on these machines."""
    step = max(1, size // max(1, arrays[0][0].size if arrays[0].ndim > 1 else 1))
    for start in range(0, len(arrays[0]), step):
        yield tuple(a[start : start + step] for a in arrays)


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
# Speed (benchmarks/resize.py): each 1-D pass is one `torch.nn.functional.embedding_bag` call, a C++ kernel that
# sums weighted rows of a table, with the resized axis made the leading one so every gathered row is contiguous.
# The uint8 path sums in float32 and recomputes in float64, in MATLAB's order, the few samples whose float32
# value lies too close to a rounding boundary to be trusted (see `_round_after_pass`): bit-exact, and 2-3x faster
# than float64 sums (without the recomputation float32 misses ~1% of ties: lena gets 4 wrong pixels).


@functools.lru_cache(maxsize=64)
def _taps(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Step 2 as tensors: indices (int64), weights (float64) and the float32 error bound on 0..255 input."""
    import torch

    weights, indices = contributions(in_len, out_len, scale)
    # Dot product of n_taps float32 terms, weights rounded too: |error| <= (n_taps + 1) * 2^-24 * sum|w * x|.
    bound = (weights.shape[1] + 1) * 2.0**-24 * 255 * float(np.abs(weights).sum(axis=1).max())
    return torch.tensor(indices), torch.tensor(weights), 4 * bound  # 4x margin


def _axis_order(scales: tuple[float, float]) -> list[int]:
    """Step 1: the axis with the smaller scale first; ties keep rows first (MATLAB's stable sort)."""
    return sorted((0, 1), key=lambda axis: scales[axis])


def _leading_table(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` (axis to resize first) as a contiguous 2-D table of ``dtype``.

    Transposes before casting: a uint8 transpose moves a quarter of the bytes of a float32 one, and strided
    copies, not casts, are what cost here.
    """
    x = x.contiguous().to(dtype)
    return x.reshape(x.shape[0], -1)


def _apply_taps(table: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Step 3: ``out[o] = sum_t weights[o, t] * table[indices[o, t]]`` for every output row o."""
    import torch.nn.functional as F

    return F.embedding_bag(indices, table, per_sample_weights=weights.to(table.dtype), mode="sum")


def _round_after_pass(out: torch.Tensor, table: torch.Tensor, taps: tuple) -> torch.Tensor:
    """Step 4 (uint8 path): MATLAB rounds its float64 sum half away from zero and clips; returns uint8.

    ``out`` (float32 sums, overwritten) is rounded; where it lies within the float32 error bound of a ``k + 0.5``
    boundary (~1% of samples on photos: linear ramps give exact ties) the float64 sum is recomputed tap by tap,
    left to right as ``imresizemex`` does. Done in numpy, single-threaded: small torch ops stall on thread
    hand-offs when the 2 cores are oversubscribed.
    """
    import torch

    values, result = out.numpy(), np.empty(tuple(out.shape), dtype=np.uint8)
    suspects, start = [], 0
    for block, target in _blocks(values, result):
        distance = np.abs(np.subtract(block, np.rint(block)))
        suspects.append(np.flatnonzero(distance > 0.5 - taps[2]) + start)
        target[...] = np.clip(np.rint(block, out=block), 0, 255, out=block)
        start += block.size
    _recompute_exactly(result.reshape(-1), np.concatenate(suspects), table.numpy(), taps)
    return torch.from_numpy(result)


def _recompute_exactly(result: np.ndarray, flat: np.ndarray, table: np.ndarray, taps: tuple) -> None:
    """MATLAB's float64 sums, rounded to uint8, at the ``flat`` positions of the (out_len, row) ``result``."""
    indices, weights = taps[0].numpy(), taps[1].numpy()
    rows, cols = np.divmod(flat, table.shape[1])
    sources = table.reshape(-1)[indices[rows] * table.shape[1] + cols[:, None]].astype(np.float64)
    row_weights = weights[rows]
    exact = row_weights[:, 0] * sources[:, 0]
    for tap in range(1, row_weights.shape[1]):
        exact += row_weights[:, tap] * sources[:, tap]
    result[flat] = to_uint8(exact)


def _as_tensor(img: np.ndarray) -> torch.Tensor:
    """HxW[xC] numpy -> HxWxC tensor sharing memory; uint8 stays uint8, floats become float64."""
    import torch

    img = np.ascontiguousarray(img if img.dtype == np.uint8 else img.astype(np.float64, copy=False))
    with warnings.catch_warnings():  # a read-only input (np.asarray of a PIL image) is only ever read here
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(img)
    return x if x.ndim == 3 else x.unsqueeze(2)


def imresize(img: np.ndarray, scale=None, *, output_shape=None) -> np.ndarray:
    """MATLAB ``imresize`` (bicubic, antialiased): uint8 HxW[xC] -> uint8, float HxW[xC] -> float64.

    ``scale`` is a positive number or one per axis (rows, cols); ``output_shape`` is (rows, cols). Exactly one.
    """
    import torch

    _check_image(img)
    scales, out_shape = _plan(img.shape[:2], scale, output_shape)
    uint8_path = img.dtype == np.uint8
    work_dtype = torch.float32 if uint8_path else torch.float64
    x = _as_tensor(img)
    for axis in _axis_order(scales):  # step 1
        taps = _taps(x.shape[axis], out_shape[axis], scales[axis])  # step 2
        moved = x.movedim(axis, 0)
        table = _leading_table(moved, work_dtype)
        out = _apply_taps(table, taps[0], taps[1])  # step 3
        if uint8_path:
            out = _round_after_pass(out, table, taps)  # step 4: MATLAB's uint8 path rounds after every pass
        x = out.view(-1, *moved.shape[1:]).movedim(0, axis)
    result = x.contiguous().numpy()
    return result if img.ndim == 3 else result[:, :, 0]


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
