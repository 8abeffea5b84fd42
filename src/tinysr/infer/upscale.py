"""Run a trained network on images: `upscale` with tiling, x8 self-ensemble, alpha and grey handling.

Convention: images are uint8 at this boundary, HW (grey), HWC RGB or HWC RGBA; networks take and return NCHW
float32 RGB 0..255 (only `model.config.scale` and that forward contract are relied on).
- RGB goes through the network; the output is rounded half to even and clipped to 0..255.
- Grey is replicated to RGB and the output channels averaged; alpha is upscaled with MATLAB bicubic and
  re-attached (`tinysr.infer.channels`, shared with the NumPy runtime and ONNX Runtime).
Tiling (see `tinysr.infer.tiling`) and self-ensemble live here, not in the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tinysr.infer import fused as fused_stage
from tinysr.infer.channels import upscale_with
from tinysr.infer.tiling import WindowFn
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


@torch.no_grad()
def upscale_array(model: nn.Module, lr: np.ndarray, *, device: str | torch.device = "cpu") -> np.ndarray:
    """Upscale one HWC RGB uint8 image with `model`; returns HWC float32 in 0..255, unrounded."""
    if lr.ndim != 3 or lr.shape[2] != 3 or lr.dtype != np.uint8:
        raise ValueError(f"expected HWC RGB uint8, got {lr.dtype} {lr.shape}")
    model = model.eval().to(device)
    return to_image(model(to_tensor(lr).to(device)))


# ---------------------------------------------------------------------------------------------------- receptive radius


def edsr_layers(config) -> list[tuple[str, int]]:
    """EDSR as a chain for `receptive_radius_of`: head, 2 per block, body-end, upsampler stages, tail (all 3x3)."""
    stages = {2: [2], 3: [3], 4: [2, 2]}[config.scale]
    layers = [("conv", 1)] * (2 + 2 * config.n_blocks)
    for factor in stages:
        layers += [("conv", 1), ("shuffle", factor)]
    return layers + [("conv", 1)]


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


# ---------------------------------------------------------------------------------------------------- one window


def _forward_dihedral(model: nn.Module, x: torch.Tensor, quarter_turns: int, flip: bool) -> torch.Tensor:
    """model(T x) mapped back by T^-1, for T = mirror after `quarter_turns` rotations."""
    t = torch.rot90(x, quarter_turns, dims=(2, 3))
    y = model(t.flip(3) if flip else t)
    return torch.rot90(y.flip(3) if flip else y, -quarter_turns, dims=(2, 3))


def network_window_fn(model: nn.Module, *, device: str | torch.device, self_ensemble: bool,
                      quantize: bool = False, fused: bool | None = False) -> WindowFn:
    """The window function of `run_tiled` for a torch network: HWC uint8 -> HWC float32 0..255, or with `quantize`
    HWC uint8 already rounded (the same pixels; for RGB, where no channel mean follows).

    fused: run a Y-only bicubic-anchored ReLU tiny net as compiled CPU kernels (`tinysr.infer.fused`: luma, convs, and
    the bicubic anchor, residual and rounding in one pass; the same pixels up to float rounding, about twice as
    fast). None: when it applies and Numba is installed; True: required (an error when it cannot apply); False:
    never.
    """
    net = _use_fused(model, device=device, self_ensemble=self_ensemble, quantize=quantize, fused=fused)
    if net is not None:
        torch_path = network_window_fn(model, device=device, self_ensemble=False, quantize=True)
        return fused_stage.window_fn(net, fallback=torch_path)
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


def _use_fused(model: nn.Module, *, device: str | torch.device, self_ensemble: bool, quantize: bool,
               fused: bool | None) -> fused_stage.FusedNet | None:
    """The net `network_window_fn`'s fused path runs (see there), or None (`tinysr.infer.fused.use` decides)."""
    if fused is False:
        return None
    param = next(model.parameters(), None)
    on_cpu = torch.device(device).type == "cpu" and param is not None and param.dtype == torch.float32
    net = fused_stage.fused_net(model) if on_cpu else None
    needs = [(on_cpu, "a float32 model on CPU"), (net is not None, fused_stage.NET_NEEDS),
             (quantize and not self_ensemble, "RGB input without self-ensemble")]
    return net if fused_stage.use(fused, [why for met, why in needs if not met]) else None


# ---------------------------------------------------------------------------------------------------- the whole image


def upscale(image: np.ndarray, model: nn.Module, *, tile: int | None = None, overlap: int | None = None,
            self_ensemble: bool = False, device: str | torch.device = "cpu",
            progress: Callable[[int], None] | None = None, workers: int | None = None,
            fused: bool | None = None) -> np.ndarray:
    """Upscale a uint8 image (HW grey, HWC RGB or RGBA) by `model.config.scale`; same layout out, uint8.

    tile: LR pixels per tile side (None: the whole image at once). overlap: LR context per side; None uses
    `receptive_radius(model)`, which makes the tiled result equal the untiled one. self_ensemble: average the 8
    dihedral transforms (x8 time). progress: called with the number of tiles done. workers: tiles run at once on
    CPU, each with one torch thread (None: torch's thread count; 1 on other devices). On CPU this is as fast as one
    tile at a time on all threads at tile 512 and faster at 256 (benchmarks/RESULTS.md "upscale"): a tiny net's
    1-channel convs scale poorly across threads, and the passes around the network run on one core each. The
    output does not depend on `workers`. fused: run a Y-only ReLU tiny net as compiled kernels
    (`network_window_fn`; the same pixels up to float rounding). None: where it applies, Numba is installed and
    it pays (`tinysr.infer.fused.worth_it`: the kernels are loaded, or the image has `AUTO_MIN_PIXELS`).
    """
    overlap = receptive_radius(model) if overlap is None else overlap
    model = model.eval().to(device)
    # grey output averages the float channels, so only RGB(A) windows may come back rounded
    rgb_only = getattr(image, "ndim", 0) == 3 and image.shape[2] in (3, 4)
    if fused is None and not fused_stage.worth_it(int(np.prod(getattr(image, "shape", (0,))[:2]))):
        fused = False  # a small job in a fresh process: the kernels' start would cost more than they save
    fn = network_window_fn(model, device=device, self_ensemble=self_ensemble, quantize=rgb_only, fused=fused)
    if workers is None:
        workers = torch.get_num_threads() if torch.device(device).type == "cpu" and tile is not None else 1
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # one thread per tile: `workers` tiles share the cores instead of every op
    try:
        return upscale_with(fn, image, scale=model.config.scale, tile=tile, overlap=overlap, progress=progress,
                            workers=workers)
    finally:
        torch.set_num_threads(threads)
