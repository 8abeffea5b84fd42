"""The tiny family: anchored, Y-only, re-parameterisable networks of 40 to 5,000 deployed parameters.

What made the published sub-5k models work (eSR-CNN, ESPCN, FSRCNN-s, SESR, ECBSR), and what this file does:
* only luma goes through the network (`channels="y"`): Cb/Cr are upsampled bicubically, as the SR benchmarks
  measure Y only;
* every conv runs at low resolution, the last one to scale^2 * C channels, then one pixel shuffle;
* the output is a residual on an anchor: the input upsampled bicubically (no parameters; MATLAB-exact, so an
  untrained net starts at the bicubic baseline) or by nearest neighbour (ESPCN-style channel repeat before the
  shuffle); the last conv is zero-initialised so the residual starts at zero;
* each conv is linearly over-parameterised while training (`expand`, see `reparam.py`) and collapsed into one
  plain conv for deployment: `collapse(model)`. Budgets count the collapsed net: `deployed_params(config)`.

Read top to bottom: the network, the collapse. The config, the layer plan, the budgets and the presets are the
family's torch-free facts, in `tinysr.families.tiny`.

Convention (the EDSR contract, so training, evaluation and export need nothing new): `forward` takes NCHW float
RGB in 0..255 and returns NCHW float RGB in 0..255 at `scale`x the size, not clamped. Internally the net sees the
channels divided by 255 and its residual is multiplied back by 255.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.families.tiny import (  # noqa: F401 (the family's facts, torch-free; re-exported for the torch side)
    ACTIVATIONS,
    ANCHORS,
    BICUBIC_RADIUS,
    BUDGETS,
    CHANNELS,
    LRELU_SLOPE,
    SUPPORTED_SCALES,
    TINY_PRESETS,
    TinyConfig,
    deployed_params,
    layer_plan,
)
from tinysr.models.reparam import ReparamConv, plain_conv
from tinysr.models.ops import bicubic_upsample, luma_gain, rgb_to_luma, rgb_to_ycbcr, ycbcr_to_rgb
from tinysr.receptive import receptive_radius_of

def _make_conv(in_ch: int, out_ch: int, kernel_size: int, expand: int) -> nn.Module:
    return ReparamConv(in_ch, out_ch, kernel_size, expand) if expand > 1 else plain_conv(in_ch, out_ch, kernel_size)


def _make_act(name: str, n_feats: int) -> nn.Module:
    if name == "prelu":
        return nn.PReLU(n_feats, init=0.25)
    if name == "lrelu":
        return nn.LeakyReLU(LRELU_SLOPE)
    return nn.ReLU() if name == "relu" else nn.Identity()


def _zero_output_(conv: nn.Module) -> None:
    """Zero the residual at init (the net starts at its anchor) while keeping every weight trainable."""
    if isinstance(conv, ReparamConv):
        conv.zero_output_()
    else:
        with torch.no_grad():
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)


# ---------------------------------------------------------------- the network

class TinySR(nn.Module):
    """A tiny SR net built from a `TinyConfig`: LR convs -> pixel shuffle -> + anchor, on Y or on RGB."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.convs = nn.ModuleList(_make_conv(i, o, k, config.expand) for i, o, k in layer_plan(config))
        self.acts = nn.ModuleList(_make_act(config.act, config.n_feats) for _ in range(config.n_layers - 1))
        self.shuffle = nn.PixelShuffle(config.scale)
        if config.anchor != "none":
            _zero_output_(self.convs[-1])

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW in 0..1 (C = n_colors) -> NCHW at scale x, in 0..1 units: the convs, nearest anchor, shuffle."""
        h = x
        for conv, act in zip(self.convs[:-1], self.acts):
            h = act(conv(h))
        h = self.convs[-1](h)
        if self.config.anchor == "nearest":
            h = h + x.repeat_interleave(self.config.scale**2, dim=1)
        return self.shuffle(h)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4 or lr.shape[1] != 3:
            raise TinySRError(f"tiny model: expected an NCHW RGB tensor, got shape {tuple(lr.shape)}")
        is_y = self.config.channels == "y"
        if is_y and self.config.anchor == "bicubic":
            # ycbcr_to_rgb is affine and MATLAB's bicubic upscaling linear with weights summing to 1, so
            # ycbcr_to_rgb([Y_up + r, Cb_up, Cr_up]) = bicubic(RGB) + gain * r: no colour conversion at HR
            # (the same output up to float rounding; 40% less time per tile on CPU).
            residual = self.residual(rgb_to_luma(lr) / 255.0)
            return torch.addcmul(self.upsample(lr), luma_gain(lr) * 255.0, residual)  # one pass, no temporaries
        x = rgb_to_ycbcr(lr) if is_y else lr
        c = self.config.n_colors
        sr = self.residual(x[:, :c] / 255.0) * 255.0
        if is_y or self.config.anchor == "bicubic":
            up = self.upsample(x)
            if self.config.anchor == "bicubic":
                sr = sr + up[:, :c]
            if is_y:
                sr = ycbcr_to_rgb(torch.cat([sr, up[:, 1:]], dim=1))
        return sr

    def forward_luma(self, lr: torch.Tensor) -> torch.Tensor:
        """Y (N1HW, MATLAB's 16..235 scale, unrounded) of `forward(lr)`: the `l1-y` loss's fast path, which skips
        the chroma upsampling that a Y-only net's Y does not depend on."""
        if self.config.channels != "y":
            return rgb_to_ycbcr(self(lr))[:, :1]
        if lr.ndim != 4 or lr.shape[1] != 3:
            raise TinySRError(f"tiny model: expected an NCHW RGB tensor, got shape {tuple(lr.shape)}")
        y = rgb_to_luma(lr)
        sr = self.residual(y / 255.0) * 255.0
        return sr + self.upsample(y) if self.config.anchor == "bicubic" else sr

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """The anchor upsampler: MATLAB bicubic (`bicubic_upsample`, which also traces to ONNX as it is)."""
        return bicubic_upsample(x, self.config.scale)

    def collapse(self) -> TinySR:
        return collapse(self)

    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on (the exact tiling overlap): the longer of the conv
        chain (k // 2 per conv at LR, then the pixel shuffle) and the bicubic upsampler's reach, 2 LR pixels
        (MATLAB bicubic upscaling: 4 taps, no antialias). Colour conversion and the nearest anchor are pointwise."""
        chain = [("conv", k // 2) for _, _, k in layer_plan(self.config)] + [("shuffle", self.config.scale)]
        bicubic = BICUBIC_RADIUS if self.config.channels == "y" or self.config.anchor == "bicubic" else 0
        return max(receptive_radius_of(chain), bicubic)


# ---------------------------------------------------------------- the collapse

def collapse(model: TinySR) -> TinySR:
    """The deployed twin: same config with expand=1 and collapsed=True, every `ReparamConv` folded into one conv.

    The output matches the expanded model's up to float rounding (about 1e-4 on 0..255 in float32; 1e-9 in
    float64). The result is on the same device and dtype, in the same train/eval mode.
    """
    config = dataclasses.replace(model.config, expand=1, collapsed=True)
    ref = next(model.parameters())
    plain = TinySR(config).to(device=ref.device, dtype=ref.dtype)
    for target, source in zip(plain.convs, model.convs):
        folded = source.collapse() if isinstance(source, ReparamConv) else source
        target.load_state_dict(folded.state_dict())
    plain.acts.load_state_dict(model.acts.state_dict())
    return plain.train(model.training)
