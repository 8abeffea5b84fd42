"""The fused high-resolution stage of a Y-only, bicubic-anchored tiny net: anchor, residual and rounding in one pass.

A Y-only tiny net's RGB output is ``bicubic(RGB) + gain * residual`` (`TinySR.forward`). In torch that takes four
passes over float32 HR tensors (two bicubic passes, the multiply-add with the pixel shuffle, then clamp, round and
the uint8 HWC layout), which cost more than the network's convolutions on CPU (benchmarks/RESULTS.md "upscale").
`anchor_add_round` does all of it in one compiled pass per HR row, reading the uint8 HWC input and the residual's
sub-pixel phases (the last conv's output before the pixel shuffle) and writing HWC uint8, with no float HR image.

Hand-rolled because no library does this fusion: Pillow's resize is fixed-point with renormalised borders (not
MATLAB's bicubic), and neither torch eager nor ONNX Runtime fuse a resize into the ops around it. Compiled with
Numba, an optional dependency (``pip install tinysr[fast]``): `available()` says whether it is installed, and
callers fall back to the torch passes when it is not. The kernel releases the GIL, so tiles run on a thread pool.

Numerics: the same arithmetic as `tinysr.models.ycbcr.bicubic_upsample` in float32 (horizontal pass on the
half-sample-symmetric padded input, then vertical), then ``+ gain * residual``, clipped to 0..255 and rounded half
to even. Float rounding may differ from torch's vectorised order in the last bit, so a pixel at a .5 tie can land
one level apart from the torch path (tested: at most 1 level, on a tiny fraction of pixels).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from tinysr.errors import TinySRError

RADIUS = 2  # LR pixels each side that MATLAB bicubic upscaling reads (the padding of both passes)


def available() -> bool:
    """True when Numba is installed (then `anchor_add_round` can run)."""
    return importlib.util.find_spec("numba") is not None


@functools.lru_cache(maxsize=8)
def phase_taps(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64 (scale, 4), weights float32 (scale, 4)): per output phase, the input offsets -2..2 and MATLAB
    cubic weights of `bicubic_upsample` (its non-zero taps, padded with weight 0 where a phase has fewer than 4)."""
    from tinysr.resize import cubic

    d = (np.arange(scale) + 0.5) / scale - 0.5
    weights = cubic(d[:, None] - np.arange(-RADIUS, RADIUS + 1)[None, :])  # (scale, 5), at most 4 non-zero
    offsets = np.zeros((scale, 4), np.int64)
    taps = np.zeros((scale, 4), np.float32)
    for p, row in enumerate(weights):
        nonzero = [(k - RADIUS, w) for k, w in enumerate(row) if w != 0.0]
        for t, (k, w) in enumerate(nonzero):
            offsets[p, t], taps[p, t] = k, w
    return offsets, taps


def anchor_add_round(lr: np.ndarray, phases: np.ndarray, gain: np.ndarray, scale: int) -> np.ndarray:
    """bicubic(lr) + gain[c] * shuffle(phases), clipped, rounded half to even: HWC uint8 at `scale`x.

    lr: (h, w, 3) uint8 RGB, h, w >= 2 (a view is fine). phases: (scale^2, h, w) float32, the residual's
    sub-pixel phases, phase p * scale + q giving output pixel (i * scale + p, j * scale + q) (torch's
    `pixel_shuffle` order). gain: (3,) float32, how much each RGB channel moves per unit of residual.
    """
    h, w = lr.shape[:2]
    if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3 or min(h, w) < 2:
        raise TinySRError(f"fused anchor: need HWC RGB uint8 of at least 2x2, got {lr.dtype} {lr.shape}")
    if phases.shape != (scale * scale, h, w) or phases.dtype != np.float32:
        raise TinySRError(f"fused anchor: need ({scale * scale}, {h}, {w}) float32 phases, got "
                          f"{phases.dtype} {phases.shape}")
    offsets, taps = phase_taps(scale)
    out = np.empty((h * scale, w * scale, 3), np.uint8)
    from tinysr._fused_kernel import fused

    fused(lr, np.ascontiguousarray(phases), np.ascontiguousarray(gain, dtype=np.float32), offsets, taps, out)
    return out
