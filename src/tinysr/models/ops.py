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

from tinysr.color import RGB_TO_YCBCR, YCBCR_OFFSET, YCBCR_TO_RGB
from tinysr.resize import imresize_torch, phase_taps


def _check_nchw3(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what}: expected an NCHW tensor with 3 channels, got shape {tuple(x.shape)}")


def _apply(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel `matrix @ [c0, c1, c2]` on an NCHW tensor."""
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("oc,nchw->nohw", m, x)


def _offset(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(YCBCR_OFFSET, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """NCHW RGB 0..255 -> NCHW YCbCr (MATLAB `rgb2ycbcr` ranges), same dtype, unrounded."""
    _check_nchw3(rgb, "rgb_to_ycbcr")
    return _apply(RGB_TO_YCBCR / 255.0, rgb) + _offset(rgb)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """NCHW YCbCr (MATLAB ranges) -> NCHW RGB 0..255, same dtype, unrounded and unclipped."""
    _check_nchw3(ycbcr, "ycbcr_to_rgb")
    return _apply(YCBCR_TO_RGB * 255.0, ycbcr - _offset(ycbcr))


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """NCHW RGB 0..255 -> N1HW Y (16..235), unrounded: the first row of `rgb_to_ycbcr` alone."""
    _check_nchw3(rgb, "rgb_to_luma")
    row = torch.as_tensor(RGB_TO_YCBCR[0] / 255.0, dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("c,nchw->nhw", row, rgb).unsqueeze(1) + float(YCBCR_OFFSET[0])


def luma_gain(like: torch.Tensor) -> torch.Tensor:
    """(1, 3, 1, 1): how much R, G, B move per unit of Y in `ycbcr_to_rgb` (MATLAB's 255/219 on each)."""
    return torch.as_tensor(YCBCR_TO_RGB[:, 0] * 255.0, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """NCHW float -> NCHW float at `scale`x size: MATLAB-exact bicubic, any channel count.

    Chosen over `F.interpolate(mode="bicubic")` (Keys a = -0.75, replicate borders) so that the anchor is exactly
    the benchmark's bicubic. For an integer upscale MATLAB's taps are periodic: output ``i * scale + p`` is
    ``sum_k cubic(d_p - k) * x[i + k]``, k = -2..2, ``d_p = (p + 0.5) / scale - 0.5``, on the input padded
    half-sample symmetrically by 2 (MATLAB's mirror indices), and Keys' kernel sums to 1, so MATLAB's per-output
    normalisation changes nothing beyond float rounding. That is one 5-tap conv with `scale` outputs per axis:
    linear in the image size, where `imresize_torch`'s dense (out x in) matrices grow with its square (12x slower
    on a 1920x1080 frame). Sides shorter than 2 go through `imresize_torch`.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1 or min(x.shape[-2:]) < 2:
        return imresize_torch(x, scale)
    taps = phase_taps(scale)
    return _upsample_axis(_upsample_axis(x, taps, dim=-1), taps, dim=-2)


def _upsample_axis(x: torch.Tensor, taps: tuple, *, dim: int) -> torch.Tensor:
    """`x` with axis `dim` (-1 or -2) upsampled by len(taps): each phase a weighted sum of shifted views of the
    input padded by 2 with MATLAB's half-sample symmetric mirror ([x1 x0 | x0 ... x_{n-1} | x_{n-1} x_{n-2}])."""
    n = x.shape[dim]
    padded = torch.cat([x.narrow(dim, 0, 2).flip(dim), x, x.narrow(dim, n - 2, 2).flip(dim)], dim=dim)
    phases = []
    for phase in taps:
        out = None
        for k, w in phase:
            term = padded.narrow(dim, 2 + k, n)
            out = term * w if out is None else out.add_(term, alpha=w)
        phases.append(out)
    stacked = torch.stack(phases, dim=dim)  # (..., n, scale) after dim, or (..., n, scale, W) for dim -2
    shape = list(x.shape)
    shape[dim] = n * len(taps)
    return stacked.reshape(shape)
