"""Torch twins of `tinysr.color` for batched tensors, and the bicubic upsampler the tiny models anchor on.

Convention: tensors are NCHW float (any float dtype, any device) with 3 channels in 0..255 space.
* `rgb_to_ycbcr`: RGB 0..255 -> YCbCr with MATLAB `rgb2ycbcr` ranges (Y 16..235, Cb/Cr 16..240), unrounded.
* `ycbcr_to_rgb`: its exact inverse (MATLAB `ycbcr2rgb`), unrounded and unclipped.
* `bicubic_upsample`: MATLAB `imresize(x, scale)` on each channel (float path, no rounding), so a bicubic anchor
  equals the bicubic baseline that evaluation compares against.
The matrices come from `tinysr.color`, so the numpy and torch conversions cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch

from tinysr.color import _OFFSET, _RGB_TO_YCBCR
from tinysr.resize import imresize_torch

_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def _check_nchw3(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what}: expected an NCHW tensor with 3 channels, got shape {tuple(x.shape)}")


def _apply(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel `matrix @ [c0, c1, c2]` on an NCHW tensor."""
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("oc,nchw->nohw", m, x)


def _offset(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(_OFFSET, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """NCHW RGB 0..255 -> NCHW YCbCr (MATLAB `rgb2ycbcr` ranges), same dtype, unrounded."""
    _check_nchw3(rgb, "rgb_to_ycbcr")
    return _apply(_RGB_TO_YCBCR / 255.0, rgb) + _offset(rgb)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """NCHW YCbCr (MATLAB ranges) -> NCHW RGB 0..255, same dtype, unrounded and unclipped."""
    _check_nchw3(ycbcr, "ycbcr_to_rgb")
    return _apply(_YCBCR_TO_RGB * 255.0, ycbcr - _offset(ycbcr))


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """NCHW float -> NCHW float at `scale`x size: MATLAB-exact bicubic (`imresize_torch`), any channel count.

    Chosen over `F.interpolate(mode="bicubic")` (Keys a = -0.75, replicate borders) so that the anchor is exactly
    the benchmark's bicubic; its cost is two small matrix products per image.
    """
    return imresize_torch(x, scale)
