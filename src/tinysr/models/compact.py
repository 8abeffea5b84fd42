"""The compact family: Real-ESRGAN's SRVGGNetCompact, the plain-conv architecture that spandrel (chaiNNer, ComfyUI)
detects, so that a tinysr-trained net loads in those apps (`tinysr export --format spandrel`).

On RGB: 3x3 convs at low resolution with PReLU between them, the last to 3 scale^2 channels, a pixel shuffle, and
the input upsampled by nearest neighbour added back. The modules and their state-dict keys are spandrel's
(``body.{i}``: convs at even i, PReLUs at odd i); the config, the shapes, the presets and the engine's program are the
family's torch-free facts, in `tinysr.families.compact`. One change from Real-ESRGAN, at initialisation only: the
last conv starts at zero, so an untrained net is nearest upsampling and training starts from there (as the tiny
family's anchored nets do).

Convention (the EDSR contract, so training, evaluation and export need nothing new): `forward` takes NCHW float RGB
in 0..255 and returns NCHW float RGB in 0..255 at `scale`x the size, not clamped. Inside, the net is spandrel's on
0..1 (as spandrel feeds it): the input is divided by 255 and the output multiplied by 255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tinysr.errors import TinySRError
from tinysr.families.compact import (  # noqa: F401 (the family's facts, torch-free; re-exported for the torch side)
    BUDGETS,
    COMPACT_PRESETS,
    KERNEL_SIZE,
    SUPPORTED_SCALES,
    CompactConfig,
    conv_plan,
    layers,
    n_params,
)
from tinysr.receptive import receptive_radius_of

#: PReLU's initial slope: torch's default, which SRVGGNetCompact keeps.
PRELU_INIT = 0.25


class CompactSR(nn.Module):
    """SRVGGNetCompact built from a `CompactConfig`: convs + PReLU -> pixel shuffle -> + nearest-upsampled input."""

    def __init__(self, config: CompactConfig) -> None:
        super().__init__()
        self.config = config
        body: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(conv_plan(config)):
            body.append(nn.Conv2d(c_in, c_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2))
            if i < config.n_layers - 1:
                body.append(nn.PReLU(config.n_feats, init=PRELU_INIT))
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(config.scale)
        with torch.no_grad():  # the residual starts at zero: the untrained net is its nearest anchor
            nn.init.zeros_(self.body[-1].weight)
            nn.init.zeros_(self.body[-1].bias)

    def forward_unit(self, x: torch.Tensor) -> torch.Tensor:
        """SRVGGNetCompact.forward, line for line: NCHW RGB in 0..1 -> NCHW RGB in 0..1 units at scale x."""
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.config.scale, mode="nearest")

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4 or lr.shape[1] != 3:
            raise TinySRError(f"compact model: expected an NCHW RGB tensor, got shape {tuple(lr.shape)}")
        return self.forward_unit(lr / 255.0) * 255.0

    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on (the exact tiling overlap): one per 3x3 conv, all at LR
        (the nearest anchor and the PReLUs are pointwise)."""
        return receptive_radius_of(layers(self.config))
