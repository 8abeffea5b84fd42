"""Compact nets (Real-ESRGAN's SRVGGNetCompact, `tinysr.families.compact`) as compiled CPU kernels.

A compact net is RGB in 0..1: 3x3 convs with a PReLU after each but the last, the last conv's 3 s^2 channels pixel-
shuffled, and the input upsampled by nearest neighbour added back. Here, on an HWC RGB uint8 window:
1. `_fused_kernel.planes`: the input as three zero-padded float32 planes, times 1/255;
2. each conv, row by row, with its PReLU: `_fused_kernel.conv_prelu`, the 3x3 kernels of the Y-only tiny nets
   (`tinysr.infer.fused`), whose ReLU is a PReLU of slope 0;
3. `_fused_kernel.nearest_add_round`: the nearest anchor, the pixel shuffle, x255, the clip, the rounding half to
   even and the HWC uint8 layout, in one pass per HR row (as `tinysr.infer.fused.anchor_add_round` for bicubic).
No float HR image is made; the padded LR planes between convs are the only intermediates.

Numerics, float32 throughout, in the order of the family's program (`tinysr.families.compact.program`, the reference):
the input times float32(1 / 255) (torch's net divides by 255: it can differ in the last bit), each conv summing
bias, then per input channel its 9 taps in row-major order (the program sums per tap over channels in BLAS, torch in
its own order), ``v if v >= 0 else slope * v``, then ``(residual + input) * 255``. So the output can differ from the
NumPy and torch engines by one level where a value sits at a .5 tie (tested: at most 1 level on at most 0.1 % of the
values). Every output pixel is computed by the same operations whatever the window, so tiled equals untiled bit for
bit. A compact net has no bicubic mirror, so any window of at least 1x1 runs here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysr.errors import TinySRError
from tinysr.families import config_from_dict
from tinysr.families.compact import program
from tinysr.infer.fused import _padded, blocked

#: What a net must be for `compact_net_from_arrays` / `compact_net` to return one (the error text of `fused.use`).
NET_NEEDS = "a compact net"


@dataclass(frozen=True)
class CompactNet:
    """A compact net as plain float32 arrays: everything `window` needs to run it without torch.

    scale: upscaling factor. weights: (O, C, 3, 3) per conv, first to last. biases: (O,) per conv. slopes: (F,)
    PReLU slopes after each conv but the last. in_factor, out_factor: the program's scalings of the input (1/255)
    and of the output (255), as float32.
    """

    scale: int
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    slopes: tuple[np.ndarray, ...]
    in_factor: np.float32
    out_factor: np.float32
    #: `weights` and `biases` as the kernel takes them (`tinysr.infer.fused.blocked`), computed once.
    kernel_weights: tuple[np.ndarray, ...] = ()
    kernel_biases: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        pairs = [blocked(w, b) for w, b in zip(self.weights, self.biases)]
        object.__setattr__(self, "kernel_weights", tuple(w for w, _ in pairs))
        object.__setattr__(self, "kernel_biases", tuple(b for _, b in pairs))


def compact_net_from_arrays(config: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> CompactNet | None:
    """The `CompactNet` of a compact net given as its config dict and its state dict as arrays (``body.{2i}.weight``
    / ``.bias``, ``body.{2i+1}.weight``): what a weights file or a NumPy export holds. None for any other family.
    No torch needed."""
    if config.get("family") != "compact":
        return None
    deployed = config_from_dict(dict(config))
    ops = program(deployed)  # the reference numerics: its first op scales the input, its last the output

    def array(name: str) -> np.ndarray:
        return np.ascontiguousarray(weights[name], dtype=np.float32)

    n = deployed.n_layers
    return CompactNet(
        scale=deployed.scale,
        weights=tuple(array(f"body.{2 * i}.weight") for i in range(n)),
        biases=tuple(array(f"body.{2 * i}.bias") for i in range(n)),
        slopes=tuple(array(f"body.{2 * i + 1}.weight").reshape(-1) for i in range(n - 1)),
        in_factor=np.float32(ops[0]["factor"]),
        out_factor=np.float32(ops[-1]["factor"]),
    )


def compact_net(model) -> CompactNet | None:
    """`compact_net_from_arrays` of a torch `tinysr.models.compact.CompactSR`; None for any other model."""
    from tinysr.models import CompactSR, config_to_dict  # here, not at the top: this module must stay torch-free

    if not isinstance(model, CompactSR):
        return None
    arrays = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    return compact_net_from_arrays(config_to_dict(model.config), arrays)


def window(net: CompactNet, lr: np.ndarray) -> np.ndarray:
    """Run `net` on an HWC RGB uint8 window (h, w >= 1): HWC uint8 at `scale`x, rounded half to even (steps 1-3 of
    the module docstring; zero 'same' padding, as torch's)."""
    from tinysr.infer import _fused_kernel as kernel

    if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3 or min(lr.shape[:2]) < 1:
        raise TinySRError(f"fused compact net: need HWC RGB uint8 of at least 1x1, got {lr.dtype} {lr.shape}")
    h, w = lr.shape[:2]
    x01 = _padded(3, h, w, 1)  # read by the first conv and, for the nearest anchor, by the last step
    kernel.planes(np.ascontiguousarray(lr), net.in_factor, x01)
    plane = x01
    last = len(net.weights) - 1
    for i, (weight, bias) in enumerate(zip(net.kernel_weights, net.kernel_biases)):
        n_out = net.weights[i].shape[0]
        if i == last:  # a strided view like the hidden layers' outputs: the kernels compile for one layout only
            out = _padded(n_out, h, w, 0, spare=1)[:, :, :w]
            kernel.conv_prelu(plane, weight, bias, False, bias, out)  # no PReLU: `bias` stands in for the slopes
        else:
            nxt = _padded(n_out, h, w, 1)
            kernel.conv_prelu(plane, weight, bias, True, net.slopes[i], nxt[:, 1:1 + h, 1:1 + w])
            plane = nxt
    sr = np.empty((h * net.scale, w * net.scale, 3), np.uint8)
    kernel.nearest_add_round(x01, out, net.out_factor, sr)
    return sr


def window_fn(net: CompactNet) -> Callable[[np.ndarray], np.ndarray]:
    """`window` as a window function of `tinysr.infer.tiling.run_tiled` (every window size runs here)."""
    return lambda lr: window(net, lr)
