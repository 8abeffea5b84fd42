"""The fast path of `tinysr.resize.imresize`: its passes as banded matrix products (BLAS), in blocks of rows.

Private: `tinysr.resize` states the algorithm (MATLAB's scale and size rules, contributions, pass order, rounding)
and calls `resize_table`. This module sits below resize.py, so the two MATLAB rules it needs, `contributions` and
`to_uint8`, are handed in by the caller rather than imported (which would be a cycle).

Layout: an image is a (rows, W*C) table of interleaved pixels, uint8 or float64.

Speed (benchmarks/resize.py): the output is made in blocks of rows, both passes per block, so the intermediate
image never exists in full and temporaries stay a few MB (cache, no page faults). A pass is a few small matrix
products on rows of interleaved pixels, the (rows, W*C) table, never transposed: along rows, an (out x window) band of the weights
times whole rows; along columns, a window of columns times kron(band.T, I_C), which keeps the channels interleaved
(C times the multiply-adds of planar data, yet cheaper here than transposing the image in and out of planes).
The uint8 path sums in float32: exact where MATLAB's weights are dyadic (scales 2, 4, 1/2, 1/4); elsewhere the
few sums within the float32 error bound of a rounding boundary (~1% on photos: linear ramps give exact ties) are
recomputed in float64, in MATLAB's tap order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: `tinysr.resize.contributions`: (in_len, out_len, scale) -> (weights (out, taps) float64, indices (out, taps) int64)
Contributions = Callable[[int, int, float], tuple[np.ndarray, np.ndarray]]
#: `tinysr.resize.to_uint8`: float64 sums -> uint8, MATLAB's rounding
ToUint8 = Callable[[np.ndarray], np.ndarray]

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
def _taps(contributions: Contributions, in_len: int, out_len: int, scale: float) -> _Taps:
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
    """Step 4 along axis 0 of (rows, W*C) tables: each output row is a weighted sum of whole input rows."""

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
    """Step 4 along axis 1 of (rows, W*C) tables, channels interleaved; rows are independent (start..stop unused)."""

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
def _passes(contributions: Contributions, in_shape: tuple[int, int], out_shape: tuple[int, int], scales: tuple,
            channels: int, dtype: type):
    """Step 2 for both axes, as band matrices of ``dtype``: (rows pass, columns pass)."""
    rows = _taps(contributions, in_shape[0], out_shape[0], scales[0])
    columns = _taps(contributions, in_shape[1], out_shape[1], scales[1])
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


def _round(sums: np.ndarray, bound: float, exact, to_uint8: ToUint8, out: np.ndarray | None = None) -> np.ndarray:
    """Step 5 (uint8 path) on contiguous float32 sums: round half away from zero and clip to 0..255, as MATLAB.

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


def _resize_block(x: np.ndarray, passes: tuple, window: tuple[int, int], start: int, stop: int, out: np.ndarray,
                  to_uint8: ToUint8) -> None:
    """Output rows start..stop, into ``out``, from the input rows ``window`` of the (rows, W*C) table ``x``: both
    passes (steps 4 and 5), the uint8 path rounding after each."""
    uint8_path = out.dtype == np.uint8
    lo, hi = window
    src = x[lo:hi].astype(np.float32 if uint8_path else np.float64, copy=False)
    first, second = passes
    mid = first.apply(src, lo, start, stop)
    if uint8_path:
        _round(mid, first.taps.bound, functools.partial(first.exact, src, lo, start), to_uint8)
        res = second.apply(mid, lo, start, stop)
        _round(res, second.taps.bound, functools.partial(second.exact, mid, lo, start), to_uint8, out=out)
    else:
        second.apply(mid, lo, start, stop, out=out)


def resize_table(x: np.ndarray, out: np.ndarray, *, in_shape: tuple[int, int], scales: tuple[float, float],
                 channels: int, rows_first: bool, contributions: Contributions, to_uint8: ToUint8) -> None:
    """Steps 4 and 5 of `imresize` into ``out``, the (out rows, out cols * C) uint8 or float64 table, from ``x``, the
    (rows, W*C) table, uint8 (uint8 path: rounded after each pass) or float64 (float path: never rounded)."""
    out_shape = (out.shape[0], out.shape[1] // channels)
    dtype = np.float32 if out.dtype == np.uint8 else np.float64
    rows, columns = _passes(contributions, in_shape, out_shape, scales, channels, dtype)
    passes = (rows, columns) if rows_first else (columns, rows)
    for start in range(0, out_shape[0], BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, out_shape[0])
        _resize_block(x, passes, rows.window(start, stop), start, stop, out[start:stop], to_uint8)
