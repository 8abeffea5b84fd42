"""A re-parameterisable convolution: over-parameterised while training, one plain conv when deployed.

`ReparamConv(in_ch, out_ch, kernel_size, expand)` computes

    y = reduce_1x1(expand_kxk(x)) + skip_1x1(x)

where `expand_kxk` is a k x k conv to `expand * out_ch` channels and `reduce_1x1` maps back to `out_ch` (SESR's
collapsible linear block), and `skip_1x1` is a 1 x 1 branch (ECBSR), initialised to the identity when
`in_ch == out_ch` (SESR's short residual). Every branch is linear with zero padding, so `collapse()` folds them
into a single k x k `nn.Conv2d` that gives the same output up to float rounding:

    W = W_reduce @ W_expand (over the expanded channels), W[:, :, k//2, k//2] += W_skip
    b = W_reduce @ b_expand + b_reduce + b_skip

Convention: NCHW float in, NCHW float out, spatial size kept (padding k // 2, k odd).
"""

from __future__ import annotations

import torch
from torch import nn


def plain_conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Conv2d:
    """The deployed form: one k x k conv with bias, 'same' zero padding."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


class ReparamConv(nn.Module):
    """k x k conv trained as (k x k -> expand * out_ch -> 1 x 1) + 1 x 1 skip; `collapse()` gives one conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, expand: int) -> None:
        super().__init__()
        if expand < 1 or kernel_size % 2 == 0:
            raise ValueError(f"need expand >= 1 and an odd kernel_size, got {expand}/{kernel_size}")
        self.expand_conv = plain_conv(in_ch, expand * out_ch, kernel_size)
        self.reduce_conv = nn.Conv2d(expand * out_ch, out_ch, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1)
        if in_ch == out_ch:
            with torch.no_grad():
                nn.init.dirac_(self.skip.weight)
                nn.init.zeros_(self.skip.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce_conv(self.expand_conv(x)) + self.skip(x)

    def zero_output_(self) -> None:
        """Make the block output zero while keeping it trainable (the expand conv keeps its random init)."""
        with torch.no_grad():
            for conv in (self.reduce_conv, self.skip):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        """The equivalent single conv (computed in float64, returned in this block's dtype and device)."""
        w_e, b_e = self.expand_conv.weight.double(), self.expand_conv.bias.double()
        w_r, b_r = self.reduce_conv.weight.double()[:, :, 0, 0], self.reduce_conv.bias.double()
        w_s, b_s = self.skip.weight.double()[:, :, 0, 0], self.skip.bias.double()
        weight = torch.einsum("oe,eikl->oikl", w_r, w_e)
        k = weight.shape[-1]
        weight[:, :, k // 2, k // 2] += w_s
        bias = w_r @ b_e + b_r + b_s
        ref = self.expand_conv.weight
        conv = plain_conv(weight.shape[1], weight.shape[0], k).to(device=ref.device, dtype=ref.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv
