"""Grey and alpha around an RGB upscaler: what the network sees, and how the result is put back together.

Torch-free (numpy, `tinysr.resize`, `tinysr.infer.tiling`), so that the torch upscaler (`tinysr.infer.upscale`), ONNX
Runtime and the NumPy runtime (`tinysr.export.runtime`) handle every layout the same way.

Convention: images are uint8, HW (grey), HWx1, HWC RGB or HWC RGBA; a window function maps an HWC RGB uint8 window
to HWC float32 0..255 (or uint8, already rounded) `scale`x larger.
- RGB goes through the window function.
- Grey is replicated to RGB, and the output's three channels are averaged before rounding (the mean, not Y: for
  R=G=B input the network's channels differ only by its colour bias, and the mean keeps every channel's evidence;
  Y would weight green 0.59).
- Alpha (the 4th channel) is never seen by the network: it is upscaled with MATLAB bicubic
  (`tinysr.resize.imresize`, float path, rounded half away from zero) and re-attached.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinysr.errors import TinySRError
from tinysr.infer.tiling import WindowFn, run_tiled
from tinysr.resize import imresize, to_uint8


def split_channels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Check the layout and split into (colour HWx3 or HWx1, alpha HW or None); views, not copies."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TinySRError(f"upscale needs a uint8 numpy image, got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
        raise TinySRError(f"upscale needs HW, HWx1, HWx3 or HWx4 uint8, got shape {image.shape}")
    if image.shape[2] == 4:
        return image[:, :, :3], image[:, :, 3]
    return image, None


def grey_window_fn(fn: WindowFn) -> WindowFn:
    """Grey in -> grey out: the window (HWx1) replicated to RGB, the output's channels averaged (float32)."""
    return lambda window: fn(np.repeat(window, 3, axis=2)).mean(axis=2, keepdims=True)


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """HW uint8 alpha -> (H*scale)x(W*scale) uint8 by MATLAB bicubic (float path, rounded half away from zero)."""
    return to_uint8(imresize(alpha.astype(np.float64), float(scale)))


def upscale_with(fn: WindowFn, image: np.ndarray, *, scale: int, tile: int | None, overlap: int,
                 progress: Callable[[int], None] | None = None, workers: int = 1) -> np.ndarray:
    """Upscale a uint8 image of any layout above with an RGB window function `fn`; the same layout out, uint8.

    tile, overlap, progress, workers: as `tinysr.infer.tiling.run_tiled` (tiles of the colour channels only).
    """
    colour, alpha = split_channels(image)
    grey = colour.shape[2] == 1
    sr = run_tiled(grey_window_fn(fn) if grey else fn, colour, scale=scale, tile=tile, overlap=overlap,
                   out_channels=colour.shape[2], progress=progress, workers=workers)
    if alpha is not None:
        sr = np.concatenate([sr, upscale_alpha(alpha, scale)[:, :, None]], axis=2)
    return sr[:, :, 0] if image.ndim == 2 else sr
