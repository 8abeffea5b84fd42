"""A torch network on one window: the engine's torch runner (`tinysr.infer.upscale` takes it where torch serves best:
a net the compiled kernels do not cover, self-ensemble, a GPU), and `receptive_radius` of a torch module.

Convention: windows are HWC RGB uint8 in; out HWC float32 0..255 (unrounded), or with `quantize` HWC uint8 rounded
half to even and clipped (`tinysr.infer.tiling.quantize_into`'s rule). Networks take and return NCHW float32 RGB
0..255.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tinysr.families.edsr import layers as edsr_layers
from tinysr.receptive import receptive_radius_of

#: The 8 symmetries of the square as (quarter turns, mirror), identity first.
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC RGB uint8 -> 1x3xHxW float32 0..255."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().unsqueeze(0)


def to_image(t: torch.Tensor) -> np.ndarray:
    """1x3xHxW float 0..255 -> HWC float32 0..255 (unrounded; the caller quantises)."""
    return t.squeeze(0).permute(1, 2, 0).float().cpu().numpy()


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """1xCxHxW float 0..255 -> HWC uint8, rounded half to even and clipped: `tiling.quantize_into`'s rule, done in
    torch on the contiguous NCHW tensor (one vectorised pass) before the layout change, which then moves bytes
    instead of floats."""
    return t.squeeze(0).clamp(0, 255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def receptive_radius(model: nn.Module) -> int:
    """LR pixels of context each output pixel depends on: the smallest exact tiling overlap.

    EDSR: computed exactly from the config (0 blocks x2 -> 4; each block adds 2). A family may define
    `model.receptive_radius()`. Otherwise a conservative bound: the sum of every conv's radius, valid for any net of
    convs, pointwise ops, skips and pixel shuffles (an HR conv of radius r reaches at most r LR pixels).
    """
    config = getattr(model, "config", None)
    if getattr(config, "family", None) == "edsr":
        return receptive_radius_of(edsr_layers(config))
    if callable(getattr(model, "receptive_radius", None)):
        return int(model.receptive_radius())
    return sum(max((k - 1) // 2 * d for k, d in zip(m.kernel_size, m.dilation))
               for m in model.modules() if isinstance(m, nn.Conv2d))


def _forward_dihedral(model: nn.Module, x: torch.Tensor, quarter_turns: int, flip: bool) -> torch.Tensor:
    """model(T x) mapped back by T^-1, for T = mirror after `quarter_turns` rotations."""
    t = torch.rot90(x, quarter_turns, dims=(2, 3))
    y = model(t.flip(3) if flip else t)
    return torch.rot90(y.flip(3) if flip else y, -quarter_turns, dims=(2, 3))


def window_fn(model: nn.Module, *, device: str | torch.device, self_ensemble: bool,
              quantize: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The window function of `tinysr.infer.tiling.run_tiled` for a torch network (see the module docstring).
    self_ensemble: average the outputs over the 8 flips and rotations of the input (EDSR's "+")."""
    model = model.eval().to(device)
    finish = to_uint8_image if quantize else to_image

    @torch.inference_mode()
    def run(window: np.ndarray) -> np.ndarray:
        x = to_tensor(window).to(device)
        if not self_ensemble:
            return finish(model(x))
        total = torch.zeros(())
        for quarter_turns, flip in DIHEDRAL:
            total = total + _forward_dihedral(model, x, quarter_turns, flip)
        return finish(total / len(DIHEDRAL))

    return run


@torch.no_grad()
def upscale_array(model: nn.Module, lr: np.ndarray, *, device: str | torch.device = "cpu") -> np.ndarray:
    """Upscale one HWC RGB uint8 image with a torch `model` (validation while training); HWC float32 0..255,
    unrounded."""
    if lr.ndim != 3 or lr.shape[2] != 3 or lr.dtype != np.uint8:
        raise ValueError(f"expected HWC RGB uint8, got {lr.dtype} {lr.shape}")
    model = model.eval().to(device)
    return to_image(model(to_tensor(lr).to(device)))
