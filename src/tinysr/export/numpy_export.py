"""Export a network for the torch-free NumPy runtime (`tinysr.export.runtime`): one `.npz` of weights plus a program.

File format (`np.load(path, allow_pickle=False)` reads it; no pickles):
    "tinysr_program"  JSON string: {"format": 1, "input": "lr", "output": "sr", "ops": [...]}
    "tinysr_config"   JSON string: the model config (`tinysr.models.config_to_dict`)
    "tinysr_sha256"   the digest of the three above (`tinysr.export.runtime.export_digest`), checked on load
    every other key   a float32 weight array named as in the model's state dict
Each op is a dict {"op": name, "in": [names], "out": name, ...attributes}; the ops are those of
`tinysr.export.runtime.OPS`: conv2d (weight, bias, padding), relu, prelu (weight: one slope per channel), leaky_relu
(slope), scale (factor), add, pixel_shuffle (factor), channel_shift (value, sign: +1 adds the per-channel vector
`value`, -1 subtracts it), channels (start, stop: a slice of the channel axis), concat (channel axis),
repeat_channels (repeats: each channel `repeats` times in a row, torch's repeat_interleave), bicubic_upscale (factor:
MATLAB bicubic, float path, as `tinysr.resize.imresize`). The program's output is the last op's "out".

Families: `PROGRAMS` maps a family name to the function writing its program, `CONSTANTS` to the arrays it needs
besides the state dict; add one per new family. A tiny net is exported collapsed (`TinySR.collapse`).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from tinysr.atomic import atomic_write_bytes
from tinysr.color import RGB_TO_YCBCR, YCBCR_OFFSET
from tinysr.errors import TinySRError
from tinysr.export.runtime import export_digest
from tinysr.models import config_to_dict, deployed
from tinysr.models.tiny import LRELU_SLOPE, layer_plan

PROGRAM_FORMAT = 1


def _conv(src: str, dst: str, prefix: str) -> dict[str, Any]:
    return {"op": "conv2d", "in": [src], "out": dst, "weight": f"{prefix}.weight", "bias": f"{prefix}.bias",
            "padding": 1}


def edsr_program(config) -> list[dict[str, Any]]:
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


def _tiny_body(config, src: str) -> tuple[list[dict[str, Any]], str]:
    """`TinySR.residual` on `src` (0..1): the collapsed convs with activations, the nearest anchor, the shuffle."""
    ops: list[dict[str, Any]] = []
    h = src
    plan = layer_plan(config)
    for i, (_, _, k) in enumerate(plan):
        ops.append({"op": "conv2d", "in": [h], "out": f"conv{i}", "weight": f"convs.{i}.weight",
                    "bias": f"convs.{i}.bias", "padding": k // 2})
        h = f"conv{i}"
        if i < len(plan) - 1 and config.act != "identity":
            act = {"relu": {"op": "relu"}, "prelu": {"op": "prelu", "weight": f"acts.{i}.weight"},
                   "lrelu": {"op": "leaky_relu", "slope": LRELU_SLOPE}}[config.act]
            ops.append({**act, "in": [h], "out": f"act{i}"})
            h = f"act{i}"
    if config.anchor == "nearest":
        ops += [{"op": "repeat_channels", "in": [src], "out": "repeated", "repeats": config.scale**2},
                {"op": "add", "in": [h, "repeated"], "out": "anchored"}]
        h = "anchored"
    return ops + [{"op": "pixel_shuffle", "in": [h], "out": "shuffled", "factor": config.scale}], "shuffled"


def tiny_program(config) -> list[dict[str, Any]]:
    """`TinySR.forward` of a collapsed config as ops, step by step (Y/CbCr conversions are 1x1 convs)."""
    is_y, c = config.channels == "y", config.n_colors
    ops: list[dict[str, Any]] = []
    x = "lr"
    if is_y:
        ops.append({"op": "conv2d", "in": ["lr"], "out": "ycbcr", "weight": "rgb_to_ycbcr.weight",
                    "bias": "rgb_to_ycbcr.bias", "padding": 0})
        x = "ycbcr"
        ops.append({"op": "channels", "in": [x], "out": "luma", "start": 0, "stop": 1})
    ops.append({"op": "scale", "in": ["luma" if is_y else x], "out": "x01", "factor": 1.0 / 255.0})
    body, h = _tiny_body(config, "x01")
    ops += body + [{"op": "scale", "in": [h], "out": "residual", "factor": 255.0}]
    sr = "residual"
    if is_y or config.anchor == "bicubic":
        ops.append({"op": "bicubic_upscale", "in": [x], "out": "up", "factor": config.scale})
    if config.anchor == "bicubic":
        ops += [{"op": "channels", "in": ["up"], "out": "up_net", "start": 0, "stop": c},
                {"op": "add", "in": [sr, "up_net"], "out": "anchored_sr"}]
        sr = "anchored_sr"
    if is_y:
        ops += [{"op": "channels", "in": ["up"], "out": "chroma", "start": 1, "stop": 3},
                {"op": "concat", "in": [sr, "chroma"], "out": "ycbcr_sr"},
                {"op": "conv2d", "in": ["ycbcr_sr"], "out": "sr", "weight": "ycbcr_to_rgb.weight",
                 "bias": "ycbcr_to_rgb.bias", "padding": 0}]
    else:
        ops.append({"op": "scale", "in": [sr], "out": "sr", "factor": 1.0})
    return ops


def tiny_constants(config) -> dict[str, np.ndarray]:
    """MATLAB `rgb2ycbcr` and its inverse (`tinysr.models.ops`, same float64 matrices) as 1x1 convs."""
    if config.channels != "y":
        return {}
    forward = RGB_TO_YCBCR / 255.0
    inverse = np.linalg.inv(RGB_TO_YCBCR) * 255.0
    return {"rgb_to_ycbcr.weight": forward[:, :, None, None], "rgb_to_ycbcr.bias": YCBCR_OFFSET.copy(),
            "ycbcr_to_rgb.weight": inverse[:, :, None, None], "ycbcr_to_rgb.bias": -inverse @ YCBCR_OFFSET}


#: Family name -> program writer, and -> constant arrays the program needs besides the state dict.
PROGRAMS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {"edsr": edsr_program, "tiny": tiny_program}
CONSTANTS: dict[str, Callable[[Any], dict[str, np.ndarray]]] = {"edsr": lambda config: {}, "tiny": tiny_constants}


def numpy_export_bytes(model: nn.Module) -> bytes:
    """The `.npz` bytes of `model` (see the module docstring)."""
    family = getattr(model.config, "family", None)
    if family not in PROGRAMS:
        raise TinySRError(f"--format numpy supports the families {sorted(PROGRAMS)}, not {family!r}")
    model = deployed(model)
    ops = PROGRAMS[family](model.config)
    program = {"format": PROGRAM_FORMAT, "input": "lr", "output": ops[-1]["out"], "ops": ops}
    arrays = {k: v.detach().cpu().float().numpy().reshape(v.shape) for k, v in model.state_dict().items()}
    if "rgb_mean" in arrays:
        arrays["rgb_mean"] = arrays["rgb_mean"].reshape(-1)
    arrays |= {k: v.astype(np.float32) for k, v in CONSTANTS[family](model.config).items()}
    for reserved in ("tinysr_program", "tinysr_config", "tinysr_sha256"):
        if reserved in arrays:
            raise TinySRError(f"state dict key {reserved!r} clashes with the export format")
    program_text, config_text = json.dumps(program), json.dumps(config_to_dict(model.config))
    buffer = io.BytesIO()
    np.savez(buffer, tinysr_program=np.array(program_text), tinysr_config=np.array(config_text),
             tinysr_sha256=np.array(export_digest(program_text, config_text, arrays)), **arrays)
    return buffer.getvalue()


def export_numpy(model: nn.Module, path: str | os.PathLike) -> None:
    """Write `model` for `tinysr.export.runtime` as one `.npz` file, atomically."""
    atomic_write_bytes(path, numpy_export_bytes(model))
