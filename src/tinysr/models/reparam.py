"""A re-parameterisable convolution: over-parameterised while training, one plain conv when deployed.

`ReparamConv(in_ch, out_ch, kernel_size, expand)` computes

    y = reduce_1x1(expand_kxk(x)) + skip_1x1(x)

where `expand_kxk` is a k x k conv to `expand * out_ch` channels and `reduce_1x1` maps back to `out_ch` (SESR's
collapsible linear block), and `skip_1x1` is a 1 x 1 branch (ECBSR), initialised to the identity when
`in_ch == out_ch` (SESR's short residual). Every branch is linear with zero padding, so `collapse()` folds them
into a single k x k `nn.Conv2d` that gives the same output up to float rounding. `forward` itself runs that
folded conv (built differentiably from the branch weights each step), so training costs one conv per layer while
the optimiser still sees the over-parameterised weights:

    W = W_reduce @ W_expand (over the expanded channels), W[:, :, k//2, k//2] += W_skip
    b = W_reduce @ b_expand + b_reduce + b_skip

Convention: NCHW float in, NCHW float out, spatial size kept (padding k // 2, k odd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        # Same function of the parameters as reduce(expand(x)) + skip(x), hence the same gradients, but one
        # k x k conv per step instead of three convs over expand * out_ch channels (SESR's efficient training).
        weight, bias = _fold(*self._branches())
        return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)

    def _branches(self) -> tuple[torch.Tensor, ...]:
        return (self.expand_conv.weight, self.expand_conv.bias, self.reduce_conv.weight[:, :, 0, 0],
                self.reduce_conv.bias, self.skip.weight[:, :, 0, 0], self.skip.bias)

    def zero_output_(self) -> None:
        """Make the block output zero while keeping it trainable (the expand conv keeps its random init)."""
        with torch.no_grad():
            for conv in (self.reduce_conv, self.skip):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        """The equivalent single conv (folded in float64, returned in this block's dtype and device)."""
        weight, bias = _fold(*(t.double() for t in self._branches()))
        ref = self.expand_conv.weight
        conv = plain_conv(weight.shape[1], weight.shape[0], weight.shape[-1]).to(device=ref.device, dtype=ref.dtype)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv


def _fold(w_e: torch.Tensor, b_e: torch.Tensor, w_r: torch.Tensor, b_r: torch.Tensor, w_s: torch.Tensor,
          b_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the one conv equal to the three branches; differentiable (used in forward and collapse).

    w_e (E, I, k, k), b_e (E): the expand conv; w_r (O, E), b_r (O): the reduce 1x1; w_s (O, I), b_s (O): the skip.
    """
    pad = w_e.shape[-1] // 2
    weight = torch.einsum("oe,eikl->oikl", w_r, w_e) + F.pad(w_s[:, :, None, None], (pad, pad, pad, pad))
    return weight, w_r @ b_e + b_r + b_s
