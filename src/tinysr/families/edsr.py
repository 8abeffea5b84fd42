"""EDSR's deployment facts, torch-free: its config and its forward pass as a program of the engine's ops
(`tinysr.infer.program`). The torch network is `tinysr.models.edsr.EDSR`; see there for the architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

#: The DIV2K RGB mean on 0..1, as used by EDSR; multiplied by rgb_range at build time.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
SUPPORTED_SCALES = (2, 3, 4)


@dataclass(frozen=True)
class EDSRConfig:
    """Everything needed to build an EDSR; checkpoints carry it.

    n_blocks: residual blocks (0 keeps the head, body-end and tail convs: the study's tiniest nets).
    n_feats: filters per conv.
    scale: upscaling factor, 2, 3 or 4.
    res_scale: residual scaling inside each block (0.1 for the 32/256 paper model).
    """

    n_blocks: int = 16
    n_feats: int = 64
    scale: int = 2
    res_scale: float = 1.0
    n_colors: int = 3
    rgb_range: float = 255.0
    family: ClassVar[str] = "edsr"  # fixed by the class: not a field, so no override can change it

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        if self.n_blocks < 0 or self.n_feats < 1:
            raise ValueError(f"need n_blocks >= 0 and n_feats >= 1, got {self.n_blocks}/{self.n_feats}")



def layers(config: EDSRConfig) -> list[tuple[str, int]]:
    """EDSR as a chain for `receptive_radius_of`: head, 2 per block, body-end, upsampler stages, tail (all 3x3)."""
    stages = {2: [2], 3: [3], 4: [2, 2]}[config.scale]
    chain = [("conv", 1)] * (2 + 2 * config.n_blocks)
    for factor in stages:
        chain += [("conv", 1), ("shuffle", factor)]
    return chain + [("conv", 1)]


#: State-dict tensors that are not trained parameters (excluded from parameter counts, as the study's tables do).
BUFFERS = ("rgb_mean",)


def shapes(config: EDSRConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the state dict and its shape (`EDSR.state_dict()`), from the config alone."""
    f, c = config.n_feats, config.n_colors
    out: dict[str, tuple[int, ...]] = {"rgb_mean": (1, c, 1, 1)}

    def conv(name: str, o: int, i: int) -> None:
        out[f"{name}.weight"], out[f"{name}.bias"] = (o, i, 3, 3), (o,)

    conv("head", f, c)
    for b in range(config.n_blocks):
        conv(f"body.{b}.body.0", f, f)
        conv(f"body.{b}.body.2", f, f)
    conv("body_end", f, f)
    for j, factor in enumerate({2: [2], 3: [3], 4: [2, 2]}[config.scale]):
        conv(f"upsample.{2 * j}", factor * factor * f, f)
    conv("tail", c, f)
    return out


def fold_arrays(config: EDSRConfig, state: dict[str, np.ndarray]) -> tuple[EDSRConfig, dict[str, np.ndarray]]:
    """EDSR deploys as it trains: the config and the state dict, the RGB mean flattened to its 3 values."""
    state = dict(state)
    if "rgb_mean" in state:
        state["rgb_mean"] = state["rgb_mean"].reshape(-1)
    return config, state


def constants(config: EDSRConfig) -> dict[str, np.ndarray]:
    return {}


# ---------------------------------------------------------------- the forward pass as engine ops

def _conv(src: str, dst: str, prefix: str) -> dict[str, Any]:
    return {"op": "conv2d", "in": [src], "out": dst, "weight": f"{prefix}.weight", "bias": f"{prefix}.bias",
            "padding": 1}


def program(config: EDSRConfig) -> list[dict[str, Any]]:
    """EDSR's forward pass as ops, following `models/edsr.py` line by line (names are state-dict keys)."""
    ops = [{"op": "channel_shift", "in": ["lr"], "out": "x", "value": "rgb_mean", "sign": -1},
           _conv("x", "head", "head")]
    features = "head"
    for i in range(config.n_blocks):
        block = f"body.{i}.body"
        ops += [_conv(features, f"b{i}.a", f"{block}.0"), {"op": "relu", "in": [f"b{i}.a"], "out": f"b{i}.r"},
                _conv(f"b{i}.r", f"b{i}.c", f"{block}.2")]
        residual = f"b{i}.c"
        if config.res_scale != 1.0:
            ops.append({"op": "scale", "in": [residual], "out": f"b{i}.s", "factor": config.res_scale})
            residual = f"b{i}.s"
        ops.append({"op": "add", "in": [features, residual], "out": f"b{i}"})
        features = f"b{i}"
    ops += [_conv(features, "body_end", "body_end"), {"op": "add", "in": ["head", "body_end"], "out": "skip"}]
    features = "skip"
    stages = {2: [2], 3: [3], 4: [2, 2]}[config.scale]
    for j, factor in enumerate(stages):
        ops += [_conv(features, f"up{j}", f"upsample.{2 * j}"),
                {"op": "pixel_shuffle", "in": [f"up{j}"], "out": f"up{j}.ps", "factor": factor}]
        features = f"up{j}.ps"
    return ops + [_conv(features, "tail", "tail"),
                  {"op": "channel_shift", "in": ["tail"], "out": "sr", "value": "rgb_mean", "sign": 1}]
