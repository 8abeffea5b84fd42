"""EDSR (Lim et al., 2017): residual blocks without batch norm, a global skip and a sub-pixel upsampler.

Read top to bottom: the config, the residual block, the upsampler, then the network, whose forward pass follows the
paper's figure: subtract the mean -> head conv -> residual blocks -> body-end conv (+ global skip) -> upsampler ->
tail conv -> add the mean.

Convention: inputs and outputs are NCHW float RGB in 0..rgb_range (255 by default), not clamped.
"""

from __future__ import annotations

import torch
from torch import nn

from tinysr.families.edsr import DIV2K_RGB_MEAN, SUPPORTED_SCALES, EDSRConfig  # noqa: F401 (torch-free facts)


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv, scaled by res_scale and added to the input; no batch norm, no ReLU after the add."""

    def __init__(self, n_feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling: one conv + pixel shuffle for x2 and x3; two x2 stages for x4."""

    def __init__(self, scale: int, n_feats: int) -> None:
        stages = {2: [2], 3: [3], 4: [2, 2]}[scale]
        layers: list[nn.Module] = []
        for factor in stages:
            layers += [conv3x3(n_feats, factor * factor * n_feats), nn.PixelShuffle(factor)]
        super().__init__(*layers)


class EDSR(nn.Module):
    """The EDSR network, built from an `EDSRConfig`."""

    def __init__(self, config: EDSRConfig) -> None:
        super().__init__()
        self.config = config
        mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1) * config.rgb_range
        self.register_buffer("rgb_mean", mean)
        self.head = conv3x3(config.n_colors, config.n_feats)
        self.body = nn.Sequential(*[ResBlock(config.n_feats, config.res_scale) for _ in range(config.n_blocks)])
        self.body_end = conv3x3(config.n_feats, config.n_feats)
        self.upsample = Upsampler(config.scale, config.n_feats)
        self.tail = conv3x3(config.n_feats, config.n_colors)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(lr - self.rgb_mean)
        x = x + self.body_end(self.body(x))
        return self.tail(self.upsample(x)) + self.rgb_mean
