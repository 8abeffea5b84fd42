"""Shared test helpers: random tiny models and folders of smooth PNGs (import as `from helpers import ...`).

pytest puts tests/ on sys.path (rootdir conftest, no __init__.py), so the test modules import this by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinysr.models import create_model


def random_edsr(name: str = "edsr", *, std: float = 0.1, seed: int = 0, **overrides) -> torch.nn.Module:
    """`create_model(name, **overrides)` in eval mode with every parameter drawn from N(0, std), seeded."""
    torch.manual_seed(seed)
    model = create_model(name, **overrides).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


def smooth_pngs(folder: Path, n: int, seed: int, *, coarse: int = 6, size: int = 64) -> Path:
    """n smooth size x size RGB PNGs `img{i}.png` (seeded coarse x coarse noise, PIL bicubic upsized) in a new folder.

    Smooth, so that a tiny net has something to learn.
    """
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (coarse, coarse, 3), dtype=np.uint8)).resize(
            (size, size), Image.BICUBIC).save(folder / f"img{i}.png")
    return folder


class NoCacheLocator:
    """A Numba cache locator that finds no place (as on a read-only install with no writable home): set
    ``NUMBA_CACHE_LOCATOR_CLASSES=helpers.NoCacheLocator`` to make ``cache=True`` fail."""

    @classmethod
    def from_function(cls, py_func, source_path):
        return None
