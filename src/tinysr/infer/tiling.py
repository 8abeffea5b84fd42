"""Tiled inference geometry, shared by the torch path (`tinysr.infer.upscale`) and the NumPy runtime
(`tinysr.export.runtime`).

No torch here: the NumPy runtime imports this module and must stay torch-free.

An image is cut into *cores* of `tile` x `tile` LR pixels; each core is fed to the network inside a *window* that adds
`overlap` LR pixels of context on every side (clamped to the image). Only the core's part of the network output is
kept. When `overlap` is at least the network's receptive radius, every kept output pixel sees exactly the input it
would see in a whole-image run (zero padding included: a window reaches the image border exactly where the whole
image does), so tiled equals untiled mathematically. Memory is bounded by the window, not the image.

Convention: `run_tiled` takes HWC uint8 and writes HWC uint8 (rounded half to even, clipped to 0..255).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tinysr.errors import TinySRError

#: A network run on one window: HWC uint8 LR in, HWC float32 0..255 out (scale times larger), unrounded; or HWC
#: uint8 out, already rounded half to even and clipped (then stored as it is).
WindowFn = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------------------------------- receptive radius


# ---------------------------------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Tile:
    """One core (the LR pixels this tile answers for) and its window (core + context), as (y0, y1, x0, x1)."""

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    def output_crop(self, scale: int) -> tuple[slice, slice]:
        """Where the core lies inside the network output of the window."""
        cy0, cy1, cx0, cx1 = self.core
        wy0, _, wx0, _ = self.window
        return slice((cy0 - wy0) * scale, (cy1 - wy0) * scale), slice((cx0 - wx0) * scale, (cx1 - wx0) * scale)

    def target(self, scale: int) -> tuple[slice, slice]:
        """Where the core lies in the whole HR output."""
        cy0, cy1, cx0, cx1 = self.core
        return slice(cy0 * scale, cy1 * scale), slice(cx0 * scale, cx1 * scale)


def tile_grid(height: int, width: int, *, tile: int | None, overlap: int) -> list[Tile]:
    """Cores of `tile` x `tile` LR pixels (the last row/column smaller) covering height x width, with context.

    tile=None gives one tile: the whole image.
    """
    if tile is not None and tile < 1:
        raise TinySRError(f"--tile must be a positive number of LR pixels, got {tile}")
    if overlap < 0:
        raise TinySRError(f"--overlap must be >= 0, got {overlap}")
    step_y = height if tile is None else tile
    step_x = width if tile is None else tile
    tiles = []
    for y0 in range(0, height, step_y):
        for x0 in range(0, width, step_x):
            y1, x1 = min(y0 + step_y, height), min(x0 + step_x, width)
            window = (max(y0 - overlap, 0), min(y1 + overlap, height), max(x0 - overlap, 0), min(x1 + overlap, width))
            tiles.append(Tile(core=(y0, y1, x0, x1), window=window))
    return tiles


# ---------------------------------------------------------------------------------------------------- running


def quantize_into(out: np.ndarray, sr: np.ndarray) -> None:
    """Round half to even (np.rint), clip to 0..255 and store into the uint8 array `out` (same shape); `sr`
    (float32) is overwritten."""
    np.rint(sr, out=sr)
    np.clip(sr, 0, 255, out=sr)
    out[...] = sr


def run_tiled(fn: WindowFn, lr: np.ndarray, *, scale: int, tile: int | None, overlap: int,
              out_channels: int, progress: Callable[[int], None] | None = None, workers: int = 1) -> np.ndarray:
    """Apply `fn` window by window and assemble an HWC uint8 output of shape (H*scale, W*scale, out_channels).

    lr: HWC uint8. fn: window (HWC uint8) -> HWC float 0..255 with `out_channels` channels, scale times larger,
    a fresh array (it is rounded in place), or HWC uint8 already quantised (`WindowFn`). progress: called with the
    number of tiles done after each tile, if given. workers: windows run at once on a thread pool (each writes its
    own disjoint part of the output, so the result does not depend on it); `fn` must then be thread-safe, as torch
    modules in inference mode, ONNX Runtime sessions and the NumPy runtime are. Threads rather than processes: the
    heavy work (convs, NumPy passes) releases the GIL, and the windows share the input and output arrays.
    """
    if workers < 1:
        raise TinySRError(f"workers must be >= 1, got {workers}")
    height, width = lr.shape[:2]
    out = np.empty((height * scale, width * scale, out_channels), dtype=np.uint8)
    tiles = tile_grid(height, width, tile=tile, overlap=overlap)

    def run_one(t: Tile) -> None:
        wy0, wy1, wx0, wx1 = t.window
        sr = fn(lr[wy0:wy1, wx0:wx1])
        expected = ((wy1 - wy0) * scale, (wx1 - wx0) * scale, out_channels)
        if sr.shape != expected:
            raise ValueError(f"window network gave {sr.shape}, expected {expected}")
        crop = sr[t.output_crop(scale)]
        if crop.dtype == np.uint8:
            out[t.target(scale)] = crop
        else:
            quantize_into(out[t.target(scale)], crop if crop.dtype == np.float32 else crop.astype(np.float32))

    pool = None
    if workers > 1 and len(tiles) > 1:
        pool = ThreadPoolExecutor(min(workers, len(tiles)), thread_name_prefix="tinysr-tile")
    try:  # pool.map yields in order and raises the first window's error here
        for done, _ in enumerate(pool.map(run_one, tiles) if pool else map(run_one, tiles), start=1):
            if progress is not None:
                progress(done)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out
