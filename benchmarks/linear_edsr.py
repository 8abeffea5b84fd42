"""Collapse a linear network (EDSR with 0 blocks) into one LR-space conv followed by a pixel shuffle.

Benchmark support code for `benchmarks/upscale.py` (its "collapsed conv" paths), not part of the package: no
tinysr API uses it. Its exactness test is tests/test_linear_edsr.py.

With no residual blocks there is no ReLU: head conv -> body-end conv (+ skip) -> upsampler conv -> pixel shuffle ->
tail conv, plus the mean shift, is an affine map. Away from the image border it equals ONE conv on the LR image,
`n_colors * scale^2` output channels (one per colour and sub-pixel), kernel `2r+1` square (r = receptive radius, 4
at x2: 9x9), then a pixel shuffle. Near the border it does not: each layer zero-pads its own input, which is not
the same as zero-padding the LR image. `collapsed_window_fn` therefore recomputes the band of r LR pixels along
every border with the original network (4 thin strips), so the result equals the network everywhere.

Cost at x2 (MACs per LR pixel): the chain is 3*4*9 + 4*4*9 + 4*16*9 + 4 * 4*3*9 = 1260; the collapsed conv is
12*3*81 = 2916, 2.3x the arithmetic but one pass over 3 input channels instead of 4- and 16-channel feature maps,
which is what limits these tiny nets on a CPU (bytes moved, not MACs). The benchmark measures both.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinysr.errors import TinySRError
from tinysr.infer.tiling import WindowFn
from tinysr.models.window import receptive_radius, to_image, to_tensor


class LinearSR(nn.Module):
    """conv(k x k, n_colors -> n_colors*scale^2, zero padding k//2) -> pixel shuffle; NCHW float 0..255 in and out."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, *, scale: int, config) -> None:
        super().__init__()
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)
        self.shuffle = nn.PixelShuffle(scale)
        self.config = config

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(lr))


def is_linear_edsr(model: nn.Module) -> bool:
    """True for an EDSR without residual blocks: an affine map (no ReLU anywhere), so `collapse_linear` applies."""
    config = getattr(model, "config", None)
    return getattr(config, "family", None) == "edsr" and config.n_blocks == 0


@torch.no_grad()
def collapse_linear(model: nn.Module) -> LinearSR:
    """The single conv + shuffle equal to `model` away from the border (float64 impulse responses, then float32).

    Steps: 1. run the float64 network on the mean image (the constant response c0) and on the mean plus a unit
    impulse per input colour; 2. the difference at each LR pixel around the impulse is the kernel tap, per output
    colour and sub-pixel; 3. arrange the taps as a conv weight (output channel = colour * s^2 + row * s + col, the
    pixel-shuffle order); 4. fold the mean into the bias: b = c0 - sum(weight * mean).
    """
    if not is_linear_edsr(model):
        raise TinySRError("only a linear network (EDSR with 0 blocks) collapses into one conv")
    net = _float64_copy(model)
    r, s, n = receptive_radius(model), model.config.scale, model.config.n_colors
    size, centre = 4 * r + 1, 2 * r
    mean = net.rgb_mean.view(1, n, 1, 1).expand(1, n, size, size)
    base = net(mean.clone())
    impulses = mean.repeat(n, 1, 1, 1)
    impulses[torch.arange(n), torch.arange(n), centre, centre] += 1.0
    response = net(impulses) - base  # (n_in, n_out, size*s, size*s)
    window = response[:, :, (centre - r) * s:(centre + r + 1) * s, (centre - r) * s:(centre + r + 1) * s]
    taps = window.reshape(n, n, 2 * r + 1, s, 2 * r + 1, s).permute(1, 3, 5, 0, 2, 4)  # out, a, b, in, i, j
    weight = taps.flip(4, 5).reshape(n * s * s, n, 2 * r + 1, 2 * r + 1)  # out(i) sees input i + (r - tap index)
    c0 = F.pixel_unshuffle(base, s)[0, :, centre, centre]
    bias = c0 - (weight * net.rgb_mean.view(1, n, 1, 1)).sum(dim=(1, 2, 3))
    return LinearSR(weight.float(), bias.float(), scale=s, config=model.config).eval()


def _float64_copy(model: nn.Module) -> nn.Module:
    from tinysr.models import model_from_config

    net = model_from_config(model.config).double().eval()
    net.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    return net


def border_bands(height: int, width: int, radius: int) -> list[tuple[int, int, int, int]]:
    """The (y0, y1, x0, x1) LR bands within `radius` of the border (they overlap at the corners)."""
    r_y, r_x = min(radius, height), min(radius, width)
    return [(0, r_y, 0, width), (height - r_y, height, 0, width), (0, height, 0, r_x), (0, height, width - r_x, width)]


def collapsed_window_fn(model: nn.Module, *, interior=None) -> WindowFn:
    """A `run_tiled` window function equal to `model` (float rounding aside), through the collapsed conv.

    interior: a function NCHW float32 tensor -> NCHW output, the collapsed net (default: `collapse_linear(model)`
    in torch); the benchmark passes an ONNX Runtime session here. Border bands are redone with `model`.
    """
    linear = collapse_linear(model) if interior is None else None
    interior = interior or linear
    r, s = receptive_radius(model), model.config.scale

    @torch.inference_mode()
    def run(window: np.ndarray) -> np.ndarray:
        height, width = window.shape[:2]
        out = to_image(interior(to_tensor(window)))
        for y0, y1, x0, x1 in border_bands(height, width, r):
            wy0, wy1, wx0, wx1 = max(y0 - r, 0), min(y1 + r, height), max(x0 - r, 0), min(x1 + r, width)
            band = to_image(model(to_tensor(window[wy0:wy1, wx0:wx1])))
            out[y0 * s:y1 * s, x0 * s:x1 * s] = band[(y0 - wy0) * s:(y1 - wy0) * s, (x0 - wx0) * s:(x1 - wx0) * s]
        return out

    return run
