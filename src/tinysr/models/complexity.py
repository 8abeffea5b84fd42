"""Compute cost of a network: multiply-accumulates (MACs) per output image, the x-axis of the Pareto plot.

What is counted (the convention of the SR literature's "MACs per 720p output", e.g. ECBSR, SESR, eSR):
* every `nn.Conv2d` of the DEPLOYED network: for the tiny family the collapsed net (`expand` folded away, as
  `tinysr.models.tiny.collapse` produces), for EDSR the net as it is; C_in / groups * k * k * C_out MACs per output
  position, zero padding included (the usual convention), biases, activations, pixel shuffle and the RGB mean not
  counted;
* NOT the bicubic anchor, the chroma upsampling or the Y/CbCr conversion of the tiny family: those have no
  parameters and are reported separately by `anchor_macs_per_output`, so both numbers can be plotted.

How: the network is built on the meta device (no memory, no weights) and run once on a small probe with forward
hooks on its convs. Every conv is "same"-padded, so its MACs are exactly linear in the LR area: the per-LR-pixel
cost of the probe times out_h * out_w / scale^2 LR pixels is exact for any output size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.models import model_from_config

PROBE = 4  # LR side of the probe; any size gives the same per-pixel count
BICUBIC_TAPS = 4  # MATLAB bicubic upscaling: 4 taps per axis (no antialias when upscaling)
COLOR_MACS = 9  # a 3x3 matrix per pixel for RGB -> YCbCr (LR) and YCbCr -> RGB (HR)


def deployed_config(model_or_config: Any) -> Any:
    """The config of the deployed network: a tiny config collapsed (expand 1), any other config as it is."""
    config = getattr(model_or_config, "config", model_or_config)
    if not dataclasses.is_dataclass(config) or not hasattr(config, "family"):
        raise TinySRError(f"expected a tinysr model or model config, got {type(model_or_config).__name__}")
    if config.family == "tiny":
        config = dataclasses.replace(config, expand=1, collapsed=True)
    return config


def conv_macs_per_lr_pixel(model_or_config: Any) -> int:
    """MACs of the deployed network's convs per LR input pixel (HR-resolution convs count scale^2 times)."""
    config = deployed_config(model_or_config)
    counts: list[int] = []

    def hook(conv: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        kh, kw = conv.kernel_size
        counts.append(output.shape[-2] * output.shape[-1] * conv.in_channels // conv.groups * kh * kw
                      * conv.out_channels)

    with torch.device("meta"):
        model = model_from_config(config)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.register_forward_hook(hook)
        with torch.no_grad():
            model(torch.empty(1, 3, PROBE, PROBE))
    total = sum(counts)
    if total % (PROBE * PROBE):
        raise AssertionError(f"conv MACs {total} not linear in the probe's area")  # a conv that is not "same"
    return total // (PROBE * PROBE)


def _lr_pixels(scale: int, out_h: int, out_w: int) -> int:
    if out_h < 1 or out_w < 1 or (out_h * out_w) % (scale * scale):
        raise TinySRError(f"output {out_w}x{out_h}: its area is not a whole number of x{scale} LR pixels")
    return out_h * out_w // (scale * scale)


def macs_per_output(model_or_config: Any, out_h: int = 720, out_w: int = 1280) -> int:
    """MACs of the deployed network's convs to produce one out_h x out_w output (default 720p).

    Exact: conv MACs per LR pixel times out_h * out_w / scale^2. Anchor and colour conversion excluded (see
    `anchor_macs_per_output`).
    """
    config = deployed_config(model_or_config)
    return conv_macs_per_lr_pixel(config) * _lr_pixels(config.scale, out_h, out_w)


def anchor_macs_per_output(model_or_config: Any, out_h: int = 720, out_w: int = 1280) -> int:
    """MACs of what a tiny net computes besides its convs, per out_h x out_w output: 0 for EDSR.

    Per upsampled channel, separable MATLAB bicubic (rows, then columns): 4 taps per out_h x (out_w / scale)
    intermediate sample plus 4 per output sample. Channels: Y (bicubic anchor) and Cb, Cr (always, for "y" nets);
    three for an RGB bicubic anchor. A "y" net adds 9 MACs per LR pixel (RGB -> YCbCr) and 9 per output pixel back.
    """
    config = deployed_config(model_or_config)
    if config.family != "tiny":
        return 0
    lr_pixels = _lr_pixels(config.scale, out_h, out_w)
    is_y = config.channels == "y"
    channels = (2 if is_y else 0) + (config.n_colors if config.anchor == "bicubic" else 0)
    per_channel = BICUBIC_TAPS * (out_h * out_w // config.scale + out_h * out_w)
    color = COLOR_MACS * (lr_pixels + out_h * out_w) if is_y else 0
    return channels * per_channel + color
