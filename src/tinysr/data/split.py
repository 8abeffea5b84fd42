"""Hold out N images of a training set for validation: how issue 6 validates without touching any test set.

"Never select a checkpoint on a test set: validate on a split of the training images." The split is made AFTER the
decoded cache is loaded, by index, so the cache entry (keyed on the whole training set) is shared by every split.

The rule (deterministic, recorded in config.json as data.val_names):
1. order the images by name (ties by position), so the split does not depend on folder order;
2. draw `n_val` distinct positions of that sorted list with `np.random.default_rng(seed).choice(..., replace=False)`;
3. the held-out pairs are those images in their original order; the training pairs are all the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError


def held_out_indices(names: Sequence[str], n_val: int, *, seed: int) -> list[int]:
    """Indices (ascending) into `names` of the `n_val` held-out images; see the module docstring for the rule."""
    if isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 1:
        raise TinySRError(f"--val-split must be a positive int, got {n_val!r}")
    if n_val >= len(names):
        raise TinySRError(f"--val-split {n_val}: the training set has only {len(names)} images "
                          "(at least one must stay for training)")
    order = sorted(range(len(names)), key=lambda i: (names[i], i))
    picks = np.random.default_rng(seed).choice(len(order), size=n_val, replace=False)
    return sorted(order[int(p)] for p in picks)


def subset(pairs: PairedImages, indices: Sequence[int]) -> PairedImages:
    """The pairs at `indices` (same memory-mapped views, same cache entry), in the order given."""
    return dataclasses.replace(pairs, names=tuple(pairs.names[i] for i in indices),
                               hr=[pairs.hr[i] for i in indices], lr=[pairs.lr[i] for i in indices])


def split_pairs(pairs: PairedImages, n_val: int, *, seed: int) -> tuple[PairedImages, PairedImages]:
    """(training pairs, held-out validation pairs): `n_val` images of `pairs` held out, the rest kept for training."""
    held = held_out_indices(pairs.names, n_val, seed=seed)
    held_set = set(held)
    kept = [i for i in range(len(pairs)) if i not in held_set]
    return subset(pairs, kept), subset(pairs, held)
