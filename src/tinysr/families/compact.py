"""The compact family's deployment facts, torch-free: Real-ESRGAN's SRVGGNetCompact, as spandrel detects and loads it.

The network, as spandrel 0.4.2 builds it (`spandrel/architectures/Compact/__arch/SRVGG.py`, from Real-ESRGAN): on
RGB in 0..1, a `body` list of

    conv3x3(3 -> F), PReLU(F),  then num_conv x [conv3x3(F -> F), PReLU(F)],  then conv3x3(F -> 3 s^2),

a pixel shuffle by s, and the input upsampled by nearest neighbour added back. Every conv runs at low resolution.
The state-dict keys are the body list's indices: convs at even indices (``body.{2i}.weight`` (O, I, 3, 3) and
``body.{2i}.bias`` (O,)), PReLU slopes at odd ones (``body.{2i+1}.weight`` (F,)). tinysr's torch net
(`tinysr.models.compact`) has these very keys, so its state dict is what `tinysr export --format spandrel` writes.

How spandrel reads such a state dict (`spandrel/architectures/Compact/__init__.py`): it is Compact when
``body.0.weight`` and ``body.1.weight`` exist (Compact is the first architecture its main registry tries); with h the
highest body index, in_nc = body.0.weight.shape[1], num_feat = body.0.weight.shape[0], num_conv = (h - 2) // 2, and
the length of body.h.bias is out_nc * scale^2, split by `get_scale_and_output_channels` (out_nc = in_nc = 3 when
3 * scale^2 fits, as it does for every tinysr scale). It always builds PReLU activations, so the family has no other.

tinysr's names: n_feats = num_feat; n_layers = num_conv + 2, every conv counted, as in the tiny family.

Convention at tinysr's boundary (the EDSR contract): NCHW float RGB in 0..255 in and out, not clamped. The net itself
is spandrel's, on 0..1: the input is divided by 255 and the output multiplied back by 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

SUPPORTED_SCALES = (2, 3, 4)
N_COLORS = 3  # RGB in and out: spandrel's in_nc and out_nc
KERNEL_SIZE = 3  # every conv of SRVGGNetCompact


@dataclass(frozen=True)
class CompactConfig:
    """Everything needed to build a compact net; checkpoints carry it. The defaults are SRVGGNetCompact's (64
    features, 16 body convs) at x2.

    scale: upscaling factor, 2, 3 or 4.
    n_feats: hidden width (spandrel's num_feat).
    n_layers: convs, all counted (spandrel's num_conv + 2): first (3 -> n_feats), n_layers - 2 hidden, last
        (n_feats -> 3 scale^2), each but the last followed by a PReLU of n_feats slopes.
    """

    scale: int = 2
    n_feats: int = 64
    n_layers: int = 18
    family: ClassVar[str] = "compact"  # fixed by the class: not a field, so no override can change it

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {self.scale!r}")
        if self.n_feats < 1 or self.n_layers < 2:
            raise ValueError(f"need n_feats >= 1 and n_layers >= 2 (spandrel reads body.0 and body.1), got "
                             f"{self.n_feats}/{self.n_layers}")

    @property
    def num_conv(self) -> int:
        """spandrel's num_conv: the hidden convs between the first and the last."""
        return self.n_layers - 2


# ---------------------------------------------------------------- the layer plan (shared by build, shapes and count)

def conv_plan(config: CompactConfig) -> list[tuple[int, int]]:
    """(in_channels, out_channels) of each 3x3 conv, first to last; conv i is ``body.{2 i}``."""
    f = config.n_feats
    return [(N_COLORS, f), *[(f, f)] * config.num_conv, (f, N_COLORS * config.scale**2)]


def layers(config: CompactConfig) -> list[tuple[str, int]]:
    """The net as a chain for `tinysr.receptive.receptive_radius_of`: n_layers 3x3 convs, then the shuffle (the
    nearest anchor and the PReLUs are pointwise)."""
    return [("conv", KERNEL_SIZE // 2)] * config.n_layers + [("shuffle", config.scale)]


def shapes(config: CompactConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the state dict and its shape (`CompactSR.state_dict()`, spandrel's keys), from the config."""
    out: dict[str, tuple[int, ...]] = {}
    for i, (c_in, c_out) in enumerate(conv_plan(config)):
        out[f"body.{2 * i}.weight"] = (c_out, c_in, KERNEL_SIZE, KERNEL_SIZE)
        out[f"body.{2 * i}.bias"] = (c_out,)
        if i < config.n_layers - 1:
            out[f"body.{2 * i + 1}.weight"] = (config.n_feats,)
    return out


def n_params(config: CompactConfig) -> int:
    """Trainable parameters (every tensor of the state dict: convs and PReLU slopes), from the config alone."""
    return sum(int(np.prod(shape)) for shape in shapes(config).values())


def fold_arrays(config: CompactConfig, state: dict[str, np.ndarray]) -> tuple[CompactConfig, dict[str, np.ndarray]]:
    """A compact net deploys as it trains (plain convs): the config and the state dict as they are."""
    return config, dict(state)


def constants(config: CompactConfig) -> dict[str, np.ndarray]:
    return {}


# ---------------------------------------------------------------- the forward pass as engine ops

def program(config: CompactConfig) -> list[dict[str, Any]]:
    """`CompactSR.forward` as ops: to 0..1, the convs with their PReLUs, the nearest anchor (each input channel
    repeated scale^2 times before the shuffle puts it on every pixel of its block), the shuffle, back to 0..255."""
    ops: list[dict[str, Any]] = [{"op": "scale", "in": ["lr"], "out": "x01", "factor": 1.0 / 255.0}]
    h = "x01"
    for i in range(config.n_layers):
        ops.append({"op": "conv2d", "in": [h], "out": f"conv{i}", "weight": f"body.{2 * i}.weight",
                    "bias": f"body.{2 * i}.bias", "padding": KERNEL_SIZE // 2})
        h = f"conv{i}"
        if i < config.n_layers - 1:
            ops.append({"op": "prelu", "in": [h], "out": f"act{i}", "weight": f"body.{2 * i + 1}.weight"})
            h = f"act{i}"
    return ops + [{"op": "repeat_channels", "in": ["x01"], "out": "repeated", "repeats": config.scale**2},
                  {"op": "add", "in": [h, "repeated"], "out": "anchored"},
                  {"op": "pixel_shuffle", "in": ["anchored"], "out": "shuffled", "factor": config.scale},
                  {"op": "scale", "in": ["shuffled"], "out": "sr", "factor": 255.0}]


# ---------------------------------------------------------------- the presets

#: Parameter budgets of the presets: `compact-<budget>-x<scale>` has at most <budget> trainable parameters.
BUDGETS = {"1k": 1_000, "5k": 5_000, "20k": 20_000}

# (n_layers, n_feats) per (budget, scale); trainable parameters (`n_params`, as the study counts them) in the
# comments. The rule: depth grows with the budget (3, 4, then 6 convs: spandrel's num_conv 1, 2, 4; Real-ESRGAN's
# own compact nets are deep and narrow, 64 x 16), and the width is the widest that fits the budget at that depth.
# A conv costs 9 F^2 + F, a PReLU F, the first conv 28 F and the last 27 s^2 F + 3 s^2: at x4 the last conv (433
# parameters per feature) leaves room for 2 features without a hidden conv (970) but for only 1 with one (520), so
# the 1k x4 net has 2 convs. Not yet ranked by training (issue 27: the bundled nets may change these plans).
_PLANS: dict[tuple[str, int], tuple[int, int]] = {
    ("1k", 2): (3, 5),  # 932
    ("5k", 2): (4, 13),  # 4,887
    ("20k", 2): (6, 21),  # 18,933
    ("1k", 4): (2, 2),  # 970
    ("5k", 4): (4, 8),  # 4,920
    ("20k", 4): (6, 17),  # 18,425
}

COMPACT_PRESETS: dict[str, CompactConfig] = {
    f"compact-{budget}-x{scale}": CompactConfig(scale=scale, n_feats=n_feats, n_layers=n_layers)
    for (budget, scale), (n_layers, n_feats) in _PLANS.items()
}
