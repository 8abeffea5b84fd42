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
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

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
# Speed (benchmarks/resize.py): the output is made in blocks of rows, both passes per block, so the intermediate
# image never exists in full and temporaries stay a few MB (cache, no page faults). A pass is a few small matrix products on rows of
# interleaved pixels, the (rows, W*C) table, never transposed: along rows, an (out x window) band of the weights
# times whole rows; along columns, a window of columns times kron(band.T, I_C), which keeps the channels interleaved
# (C times the multiply-adds of planar data, yet cheaper here than transposing the image in and out of planes).
# The uint8 path sums in float32: exact where MATLAB's weights are dyadic (scales 2, 4, 1/2, 1/4); elsewhere the
# few sums within the float32 error bound of a rounding boundary (~1% on photos: linear ramps give exact ties) are
# recomputed in float64, in MATLAB's tap order.

ROW_STEP = 8  # output rows per row-pass product
COLUMN_STEP = 16  # output columns per column-pass product when upscaling (times the scale when downscaling)
BLOCK_ROWS = 128  # output rows per block, a multiple of ROW_STEP (measured: 64 is ~10% slower at x2)
PRODUCT_SIZE = 2**18  # m * n * k of one matrix product at most (see `_matmul`)


class _Taps(NamedTuple):
    """Step 2 for one axis: MATLAB's contributions, and how far a float32 sum of 0..255 samples can be off."""

    weights: np.ndarray  # (out_len, taps) float64, in MATLAB's tap order
    indices: np.ndarray  # (out_len, taps) int64, 0-based
    bound: float  # 0.0 where float32 sums are exact


class _Band(NamedTuple):
    """``out[start:stop] = matrix @ in[lo:hi]`` along one axis (columns: ``in @ matrix``, channels interleaved)."""

    start: int
    stop: int
    lo: int
    hi: int
    matrix: np.ndarray


@functools.lru_cache(maxsize=64)
def _taps(in_len: int, out_len: int, scale: float) -> _Taps:
    weights, indices = contributions(in_len, out_len, scale)
    return _Taps(weights, indices, _float32_bound(weights))


def _float32_bound(weights: np.ndarray) -> float:
    """Bound on |float32 sum - exact sum| of 0..255 samples times ``weights``, in any order (BLAS picks), 4x margin.

    0.0 when the weights are multiples of 2^-q with 256 * 2^q * sum|w| <= 2^23: every product, partial sum and
    sum + 0.5 is then a multiple of 2^-q that float32 holds exactly, as does MATLAB's float64 (x2: q = 7).
    """
    l1 = float(np.abs(weights).sum(axis=1).max())
    q = next((q for q in range(24) if np.all(np.mod(weights * 2.0**q, 1) == 0)), None)
    if q is not None and 256 * 2.0**q * l1 <= 2**23:
        return 0.0
    return 4 * (weights.shape[1] + 1) * 2.0**-24 * 255 * l1  # n products, n - 1 sums, weights rounded


def _bands(taps: _Taps, step: int, channels: int, dtype: type) -> tuple[_Band, ...]:
    """The weights of each run of ``step`` output samples as a dense matrix over the input samples they read;
    for columns (``channels`` > 0) as kron(matrix.T, I_channels) over interleaved samples."""
    bands = []
    for start in range(0, len(taps.weights), step):
        weights, indices = taps.weights[start : start + step], taps.indices[start : start + step]
        lo, hi, n = int(indices.min()), int(indices.max()) + 1, len(weights)
        matrix = np.zeros((n, hi - lo))
        np.add.at(matrix, (np.arange(n)[:, None], indices - lo), weights)  # mirrored taps add up
        if channels:
            c = channels
            bands.append(_Band(start * c, (start + n) * c, lo * c, hi * c, np.kron(matrix.T, np.eye(c)).astype(dtype)))
        else:
            bands.append(_Band(start, start + n, lo, hi, matrix.astype(dtype)))
        bands[-1].matrix.flags.writeable = False  # cached (`_passes`): shared by every call
    return tuple(bands)


@dataclasses.dataclass(frozen=True)
class _RowsPass:
    """Step 3 along axis 0 of (rows, W*C) tables: each output row is a weighted sum of whole input rows."""

    taps: _Taps
    bands: tuple[_Band, ...]

    def window(self, start: int, stop: int) -> tuple[int, int]:
        """The input rows that output rows start..stop read."""
        bands = self.bands[start // ROW_STEP : -(-stop // ROW_STEP)]
        return min(b.lo for b in bands), max(b.hi for b in bands)

    def apply(self, src: np.ndarray, src_lo: int, start: int, stop: int, out=None) -> np.ndarray:
        """Output rows start..stop from ``src``, which holds input rows src_lo onward."""
        out = np.empty((stop - start, src.shape[1]), src.dtype) if out is None else out
        for b in self.bands[start // ROW_STEP : -(-stop // ROW_STEP)]:
            _matmul(b.matrix, src[b.lo - src_lo : b.hi - src_lo], out[b.start - start : b.stop - start])
        return out

    def exact(self, src: np.ndarray, src_lo: int, start: int, flat: np.ndarray) -> np.ndarray:
        """MATLAB's float64 sums at the ``flat`` positions of ``apply``'s output."""
        rows, cols = np.divmod(flat, src.shape[1])
        at = start + rows
        return _matlab_sum(self.taps.weights[at], src[self.taps.indices[at] - src_lo, cols[:, None]])


@dataclasses.dataclass(frozen=True)
class _ColumnsPass:
    """Step 3 along axis 1 of (rows, W*C) tables, channels interleaved; rows are independent (start..stop unused)."""

    taps: _Taps
    bands: tuple[_Band, ...]
    channels: int
    rows_per_product: int

    def apply(self, src: np.ndarray, src_lo: int, start: int, stop: int, out=None) -> np.ndarray:
        out = np.empty((src.shape[0], self.bands[-1].stop), src.dtype) if out is None else out
        step = self.rows_per_product
        for r in range(0, src.shape[0], step):
            for b in self.bands:
                _matmul(src[r : r + step, b.lo : b.hi], b.matrix, out[r : r + step, b.start : b.stop])
        return out

    def exact(self, src: np.ndarray, src_lo: int, start: int, flat: np.ndarray) -> np.ndarray:
        rows, rest = np.divmod(flat, self.bands[-1].stop)
        at, channel = np.divmod(rest, self.channels)
        columns = self.taps.indices[at] * self.channels + channel[:, None]
        return _matlab_sum(self.taps.weights[at], src[rows[:, None], columns])


@functools.lru_cache(maxsize=8)  # up to a few MB each (the column bands); datasets bring many image sizes
def _passes(in_shape: tuple[int, int], out_shape: tuple[int, int], scales: tuple, channels: int, dtype: type):
    """Step 2 for both axes, as band matrices of ``dtype``: (rows pass, columns pass)."""
    rows = _taps(in_shape[0], out_shape[0], scales[0])
    columns = _taps(in_shape[1], out_shape[1], scales[1])
    column_bands = _bands(columns, max(1, round(COLUMN_STEP * min(scales[1], 1.0))), channels, dtype)
    rows_per_product = max(1, PRODUCT_SIZE // max(b.matrix.size for b in column_bands))
    return _RowsPass(rows, _bands(rows, ROW_STEP, 0, dtype)), _ColumnsPass(
        columns, column_bands, channels, rows_per_product
    )


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = a @ b`` in pieces that OpenBLAS multiplies on the calling thread (m * n * k <= 2^18, or a
    matrix under 9216 entries for a vector product: its GEMM_MULTITHREAD_THRESHOLD rules). Its threads gain
    nothing on products this small and, when other jobs keep the cores busy, stall each call (8 ms, not 0.4 ms)."""
    (m, k), n = a.shape, b.shape[1]
    limit = 9215 if min(m, n) == 1 else PRODUCT_SIZE
    if m >= n:
        step = max(1, limit // (k * n))
        for i in range(0, m, step):
            np.matmul(a[i : i + step], b, out=out[i : i + step])
    else:  # (not out.T = b.T @ a.T: numpy multiplies into a transposed out without BLAS)
        step = max(1, limit // (k * m))
        for j in range(0, n, step):
            np.matmul(a, b[:, j : j + step], out=out[:, j : j + step])


def _matlab_sum(weights: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Row sums of weights * samples in float64, tap by tap left to right, as ``imresizemex`` adds them."""
    total = weights[:, 0] * samples[:, 0]
    for tap in range(1, weights.shape[1]):
        total += weights[:, tap] * samples[:, tap]
    return total


def _round(sums: np.ndarray, bound: float, exact, out: np.ndarray | None = None) -> np.ndarray:
    """Step 4 (uint8 path) on contiguous float32 sums: round half away from zero and clip to 0..255, as MATLAB.

    Rounds in place (integral float32, for the next pass), or into the uint8 ``out``. Where ``bound`` > 0, a sum
    within it of a k + 0.5 boundary gets ``to_uint8(exact(flat positions))`` instead.
    """
    flat = sums.reshape(-1)
    suspects = np.flatnonzero(np.abs(flat - np.rint(flat)) > 0.5 - bound) if bound else np.empty(0, np.int64)
    np.add(flat, 0.5, out=flat)  # floor(s + 0.5) is exact in float32 but for s = 0.5 - 2^-25: a suspect
    np.clip(flat, 0, 255, out=flat)
    if out is None:
        out = np.floor(sums, out=sums)
    else:
        np.copyto(out, sums, casting="unsafe")  # truncates: floor on 0..255
    if suspects.size:
        out.reshape(-1)[suspects] = to_uint8(exact(suspects))
    return out


def _axis_order(scales: tuple[float, float]) -> list[int]:
    """Step 1: the axis with the smaller scale first; ties keep rows first (MATLAB's stable sort)."""
    return sorted((0, 1), key=lambda axis: scales[axis])


def _resize_block(x: np.ndarray, passes: tuple, window: tuple[int, int], start: int, stop: int, out: np.ndarray):
    """Output rows start..stop, into ``out``, from the input rows ``window`` of the (rows, W*C) table ``x``: both
    passes (steps 3 and 4), the uint8 path rounding after each."""
    uint8_path = out.dtype == np.uint8
    lo, hi = window
    src = x[lo:hi].astype(np.float32 if uint8_path else np.float64, copy=False)
    first, second = passes
    mid = first.apply(src, lo, start, stop)
    if uint8_path:
        _round(mid, first.taps.bound, functools.partial(first.exact, src, lo, start))
        res = second.apply(mid, lo, start, stop)
        _round(res, second.taps.bound, functools.partial(second.exact, mid, lo, start), out=out)
    else:
        second.apply(mid, lo, start, stop, out=out)


def imresize(img: np.ndarray, scale=None, *, output_shape=None) -> np.ndarray:
    """MATLAB ``imresize`` (bicubic, antialiased): uint8 HxW[xC] -> uint8, float HxW[xC] -> float64.

    ``scale`` is a positive number or one per axis (rows, cols); ``output_shape`` is (rows, cols). Exactly one.
    The float path, whose passes commute up to float rounding, resizes columns first whenever it upscales rows
    (fewer samples through the dearer column pass); a non-finite sample spreads to the outputs of its bands.
    """
    _check_image(img)
    scales, out_shape = _plan(img.shape[:2], scale, output_shape)
    uint8_path = img.dtype == np.uint8
    channels = img.shape[2] if img.ndim == 3 else 1
    x = np.ascontiguousarray(img if uint8_path else img.astype(np.float64, copy=False))
    x = x.reshape(img.shape[0], -1)  # rows of interleaved pixels
    rows, columns = _passes(img.shape[:2], out_shape, scales, channels, np.float32 if uint8_path else np.float64)
    rows_first = _axis_order(scales)[0] == 0 if uint8_path else scales[0] <= 1  # step 1
    passes = (rows, columns) if rows_first else (columns, rows)
    out = np.empty((out_shape[0], out_shape[1] * channels), np.uint8 if uint8_path else np.float64)
    for start in range(0, out_shape[0], BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, out_shape[0])
        _resize_block(x, passes, rows.window(start, stop), start, stop, out[start:stop])
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
