"""Y-only tiny nets as compiled CPU kernels: luma, the convs, and the HR stage fused into one pass.

A Y-only tiny net's RGB output is ``bicubic(RGB) + gain * residual`` (`TinySR.forward`). In torch the HR stage takes
four passes over float32 HR tensors (two bicubic passes, the multiply-add with the pixel shuffle, then clamp, round
and the uint8 HWC layout), which cost more than the convs, and oneDNN runs convs of 1 to 6 channels at a few GMAC/s
(benchmarks/RESULTS.md "upscale"). Here:
* `anchor_add_round` does the whole HR stage in one compiled pass per HR row, from the uint8 HWC input and the
  residual's sub-pixel phases (the last conv's output before the pixel shuffle) to HWC uint8: no float HR image;
* `window` runs a whole net (`FusedNet`, read from a model by `fused_net`) on a window: luma, each conv row by row
  (contiguous multiply-adds vectorised by the compiler, accumulator rows in L1), then `anchor_add_round`.

Hand-rolled because no library does this fusion: Pillow's resize is fixed-point with renormalised borders (not
MATLAB's bicubic), and neither torch eager nor ONNX Runtime fuse a resize into the ops around it. Compiled with
Numba, a dependency of the core install: `available()` says whether it is importable, and callers fall back to
another engine (`tinysr.infer.upscale.choose_engine`) when it is not. Numba caches the compiled code on disk (next
to the kernels, or in the user's cache folder where the install is read-only), so only a first run compiles. The
kernels release the GIL, so tiles run on a thread pool. Compact nets (RGB, PReLU, nearest anchor) run on the same 3x3
conv kernels: `tinysr.infer.fused_compact`.

Numerics, float32 throughout: the bicubic is `tinysr.models.ops.bicubic_upsample`'s arithmetic in its order
(horizontal pass on the half-sample-symmetric padded input, then vertical), then ``+ gain * residual``, clipped to
0..255 and rounded half to even (taps: `tinysr.resize.phase_taps`). The convs sum in their own order (bias,
then per input channel its taps by row and column), so the output can differ from torch's by one level where a
value sits at a .5 tie (tested: at most 1 level, on a tiny fraction of pixels). Every output pixel is computed
by the same operations whatever the window, so tiled equals untiled bit for bit.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysr.color import RGB_TO_YCBCR, YCBCR_OFFSET, YCBCR_TO_RGB
from tinysr.errors import TinySRError
from tinysr.resize import phase_taps as matlab_taps

def available() -> bool:
    """True when Numba is installed (then the kernels here can run)."""
    return importlib.util.find_spec("numba") is not None


#: What a net must be for `fused_net` / `fused_net_from_arrays` to return one (the error text of `use`).
NET_NEEDS = "a Y-only tiny net with a bicubic anchor and ReLU (or no) activations"


def use(fused: bool | None, unmet: list[str]) -> bool:
    """Whether a caller takes the fused path. `unmet`: what its model and input lack, in order (empty when they
    qualify); Numba comes last. fused=False: never; None: when nothing is unmet; True: required, and the first
    unmet need is a one-line error."""
    if fused is False:
        return False
    if not unmet and not available():
        unmet = ["Numba (pip install numba)"]
    if unmet and fused:
        raise TinySRError(f"the fused path needs {unmet[0]}")
    return not unmet


@functools.lru_cache(maxsize=8)
def phase_taps(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """`tinysr.resize.phase_taps` as the kernel's arrays: (offsets int64 (scale, 4), weights float32 (scale, 4)),
    padded with weight 0 where a phase has fewer than 4 taps."""
    offsets = np.zeros((scale, 4), np.int64)
    taps = np.zeros((scale, 4), np.float32)
    for p, phase in enumerate(matlab_taps(scale)):
        for t, (k, w) in enumerate(phase):
            offsets[p, t], taps[p, t] = k, w
    return offsets, taps


def _check_window(lr: np.ndarray, what: str) -> None:
    if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3 or min(lr.shape[:2]) < 2:
        raise TinySRError(f"{what}: need HWC RGB uint8 of at least 2x2, got {lr.dtype} {lr.shape}")


def anchor_add_round(lr: np.ndarray, phases: np.ndarray, gain: np.ndarray, scale: int) -> np.ndarray:
    """bicubic(lr) + gain[c] * shuffle(phases), clipped, rounded half to even: HWC uint8 at `scale`x.

    lr: (h, w, 3) uint8 RGB, h, w >= 2 (a view is fine). phases: (scale^2, h, w) float32, the residual's
    sub-pixel phases, phase p * scale + q giving output pixel (i * scale + p, j * scale + q) (torch's
    `pixel_shuffle` order). gain: (3,) float32, how much each RGB channel moves per unit of residual.
    """
    _check_window(lr, "fused anchor")
    h, w = lr.shape[:2]
    if phases.shape != (scale * scale, h, w) or phases.dtype != np.float32:
        raise TinySRError(f"fused anchor: need ({scale * scale}, {h}, {w}) float32 phases, got "
                          f"{phases.dtype} {phases.shape}")
    from tinysr.infer._fused_kernel import fused

    offsets, taps = phase_taps(scale)
    out = np.empty((h * scale, w * scale, 3), np.uint8)
    # a tile is a strided view of the image: a contiguous copy (LR, uint8: cheap) lets the kernel vectorise; the
    # phases stay as given (`window` passes a strided view, each row of which is contiguous)
    lr = np.ascontiguousarray(lr)
    fused(lr, phases, np.ascontiguousarray(gain, dtype=np.float32), offsets, taps, out)
    return out


@dataclass(frozen=True)
class FusedNet:
    """A Y-only, bicubic-anchored tiny net with ReLU (or no) activations, as plain float32 arrays: everything
    `window` needs to run it without torch.

    scale: upscaling factor. weights: (O, C, k, k) per conv, first to last (collapsed: plain convs only).
    biases: (O,) per conv. relu: whether the hidden convs are followed by a ReLU. luma: (3,) RGB -> Y weights on
    0..255 (MATLAB's first `rgb2ycbcr` row / 255), luma_offset 16. gain: (3,) RGB levels per unit of residual.
    """

    scale: int
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    relu: bool
    luma: np.ndarray
    luma_offset: float
    gain: np.ndarray
    #: `weights` and `biases` as the kernel takes them (`blocked`), computed once in `__post_init__`.
    kernel_weights: tuple[np.ndarray, ...] = ()
    kernel_biases: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        pairs = [blocked(w, b) for w, b in zip(self.weights, self.biases)]
        object.__setattr__(self, "kernel_weights", tuple(w for w, _ in pairs))
        object.__setattr__(self, "kernel_biases", tuple(b for _, b in pairs))


def blocked(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A conv's (weight, bias) as `_fused_kernel.conv` takes them: 3x3 filters padded with zero filters to 4k or
    4k + 2 (it runs them four, and a last two, at a time; the padding is computed, never stored), other sizes as
    they are."""
    n_out = weight.shape[0]
    if weight.shape[2] != 3 or n_out % 4 in (0, 2):
        return weight, bias
    pad = -n_out % 4 if n_out % 4 == 3 else 1  # 1 -> 2, 3 -> 4, 5 -> 6
    return (np.ascontiguousarray(np.concatenate([weight, np.zeros((pad, *weight.shape[1:]), np.float32)])),
            np.ascontiguousarray(np.concatenate([bias, np.zeros(pad, np.float32)])))


def fused_net_from_arrays(config: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> FusedNet | None:
    """The `FusedNet` of a plain (collapsed or expand 1) tiny net given as its config dict and its state dict as
    arrays (``convs.{i}.weight`` / ``.bias``): what a NumPy export holds. None when the net is not `NET_NEEDS`,
    or is still expanded. No torch needed."""
    if (config.get("family") != "tiny" or config.get("channels") != "y" or config.get("anchor") != "bicubic"
            or config.get("act") not in ("relu", "identity") or config.get("expand", 1) > 1):
        return None
    n = int(config["n_layers"])
    return FusedNet(
        scale=int(config["scale"]),
        weights=tuple(np.ascontiguousarray(weights[f"convs.{i}.weight"], dtype=np.float32) for i in range(n)),
        biases=tuple(np.ascontiguousarray(weights[f"convs.{i}.bias"], dtype=np.float32) for i in range(n)),
        relu=config["act"] == "relu",
        luma=(RGB_TO_YCBCR[0] / 255.0).astype(np.float32),
        luma_offset=float(YCBCR_OFFSET[0]),
        # `luma_gain(lr) * 255.0` of `TinySR.forward`, rounded as there: float32, then times 255 in float32
        gain=(YCBCR_TO_RGB[:, 0] * 255.0).astype(np.float32) * np.float32(255.0),
    )


def fused_net(model) -> FusedNet | None:
    """`fused_net_from_arrays` of a torch `tinysr.models.tiny.TinySR` (collapsed first if it was trained
    expanded); None for any other model. The model is not changed."""
    from tinysr.models import TinySR, config_to_dict  # here, not at the top: this module must stay torch-free

    if not isinstance(model, TinySR):
        return None
    plain = model.collapse() if model.config.expand > 1 else model
    arrays = {k: v.detach().cpu().float().numpy() for k, v in plain.state_dict().items()}
    return fused_net_from_arrays(config_to_dict(plain.config), arrays)


def window(net: FusedNet, lr: np.ndarray) -> np.ndarray:
    """Run `net` on an HWC RGB uint8 window (h, w >= 2): HWC uint8 at `scale`x, rounded half to even.

    Luma, each conv (zero 'same' padding, as torch's) and the fused HR stage (`anchor_add_round`), all compiled;
    the padded float32 planes between convs are the only intermediates (LR size).
    """
    from tinysr.infer import _fused_kernel as kernel

    _check_window(lr, "fused net")
    h, w = lr.shape[:2]
    lr = np.ascontiguousarray(lr)  # a tile is a strided view of the image; see `anchor_add_round`
    pad = net.weights[0].shape[2] // 2
    plane = _padded(1, h, w, pad)
    kernel.luma(lr, net.luma, np.float32(net.luma_offset), plane[0])
    last = len(net.weights) - 1
    for i, (weight, bias) in enumerate(zip(net.kernel_weights, net.kernel_biases)):
        if i == last:  # a strided view like the hidden layers' outputs: the kernels compile for one layout only
            out = _padded(net.weights[i].shape[0], h, w, 0, spare=1)[:, :, :w]
            kernel.conv(plane, weight, bias, False, out)
        else:
            nxt_pad = net.weights[i + 1].shape[2] // 2
            nxt = _padded(net.weights[i].shape[0], h, w, nxt_pad)
            kernel.conv(plane, weight, bias, net.relu, nxt[:, nxt_pad:nxt_pad + h, nxt_pad:nxt_pad + w])
            plane = nxt
    return anchor_add_round(lr, out, net.gain, net.scale)


def window_fn(net: FusedNet, fallback: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """`window` as a window function of `tinysr.infer.tiling.run_tiled`; windows thinner than 2 pixels (which bicubic's
    mirror padding cannot serve) go to `fallback`, the caller's own path."""
    return lambda lr: fallback(lr) if min(lr.shape[:2]) < 2 else window(net, lr)


def _padded(channels: int, h: int, w: int, pad: int, *, spare: int = 0) -> np.ndarray:
    """(channels, h + 2 pad, w + 2 pad + spare) float32 with a zero border and an uninitialised interior (and
    `spare` uninitialised columns on the right)."""
    buf = np.empty((channels, h + 2 * pad, w + 2 * pad + spare), np.float32)
    if pad:
        buf[:, :pad], buf[:, -pad:], buf[:, :, :pad], buf[:, :, pad + w:2 * pad + w] = 0, 0, 0, 0
    return buf
