"""Receptive radius of a chain of convolutions and pixel shuffles: how much LR context one output pixel needs.

A leaf (no torch): the models describe themselves as such chains, and tiling (torch and the NumPy runtime alike)
turns the radius into the exact overlap between tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def receptive_radius_of(layers: Sequence[tuple[str, int]]) -> int:
    """Exact receptive radius, in LR pixels, of a chain of ("conv", radius) and ("shuffle", factor) layers.

    `layers` are in forward order; a conv's radius is in the pixels of the resolution it runs at (1 for 3x3).
    Skip connections and pointwise ops (ReLU, add, mean shift) never widen it, so the longest chain decides.
    Walks backwards from an output pixel of every sub-pixel phase: a conv widens the interval by its radius, a
    pixel shuffle by factor f maps [a, b] to [a // f, b // f]. Returns max over phases of the LR distance reached.
    """
    total = math.prod(f for kind, f in layers if kind == "shuffle")
    worst = 0
    for phase in range(total):
        lo = hi = phase  # an output pixel of LR pixel 0 (translation invariance)
        for kind, value in reversed(layers):
            if kind == "conv":
                lo, hi = lo - value, hi + value
            elif kind == "shuffle":
                lo, hi = lo // value, hi // value
            else:
                raise ValueError(f"unknown layer kind {kind!r}")
        worst = max(worst, -lo, hi)
    return worst
