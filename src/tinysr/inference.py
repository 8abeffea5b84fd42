"""Run a trained network on images.

Convention: images are HWC RGB uint8 at this boundary; networks take NCHW float32 RGB 0..255.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC RGB uint8 -> 1x3xHxW float32 0..255."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().unsqueeze(0)


def to_image(t: torch.Tensor) -> np.ndarray:
    """1x3xHxW float 0..255 -> HWC float32 0..255 (unrounded; the caller quantises)."""
    return t.squeeze(0).permute(1, 2, 0).float().cpu().numpy()


@torch.no_grad()
def upscale_array(model: nn.Module, lr: np.ndarray, *, device: str | torch.device = "cpu") -> np.ndarray:
    """Upscale one HWC RGB uint8 image with `model`; returns HWC float32 in 0..255, unrounded."""
    if lr.ndim != 3 or lr.shape[2] != 3 or lr.dtype != np.uint8:
        raise ValueError(f"expected HWC RGB uint8, got {lr.dtype} {lr.shape}")
    model = model.eval().to(device)
    return to_image(model(to_tensor(lr).to(device)))
