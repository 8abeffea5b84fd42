"""Export a network for the torch-free NumPy runtime (`tinysr.runtime`): one `.npz` of weights plus a program.

File format (`np.load(path, allow_pickle=False)` reads it; no pickles):
    "tinysr_program"  JSON string: {"format": 1, "input": "lr", "output": "sr", "ops": [...]}
    "tinysr_config"   JSON string: the model config (`tinysr.models.config_to_dict`)
    every other key   a float32 weight array named as in the model's state dict
Each op is a dict {"op": name, "in": [names], "out": name, ...attributes}; the ops are those of
`tinysr.runtime.OPS`: conv2d (weight, bias, padding), relu, scale (factor), add, pixel_shuffle (factor),
channel_shift (value, sign: +1 adds the per-channel vector `value`, -1 subtracts it).

Families: `PROGRAMS` maps a family name to the function writing its program; add one per new family.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from tinysr.checkpoint import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.models import config_to_dict

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


#: Family name -> program writer. The tiny family (models/tiny.py) is not covered yet.
PROGRAMS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {"edsr": edsr_program}


def numpy_export_bytes(model: nn.Module) -> bytes:
    """The `.npz` bytes of `model` (see the module docstring)."""
    family = getattr(model.config, "family", None)
    if family not in PROGRAMS:
        raise TinySRError(f"--format numpy supports the families {sorted(PROGRAMS)}, not {family!r}")
    program = {"format": PROGRAM_FORMAT, "input": "lr", "output": "sr", "ops": PROGRAMS[family](model.config)}
    arrays = {k: v.detach().cpu().float().numpy().reshape(v.shape) for k, v in model.state_dict().items()}
    arrays["rgb_mean"] = arrays["rgb_mean"].reshape(-1)
    for reserved in ("tinysr_program", "tinysr_config"):
        if reserved in arrays:
            raise TinySRError(f"state dict key {reserved!r} clashes with the export format")
    buffer = io.BytesIO()
    np.savez(buffer, tinysr_program=np.array(json.dumps(program)),
             tinysr_config=np.array(json.dumps(config_to_dict(model.config))), **arrays)
    return buffer.getvalue()


def export_numpy(model: nn.Module, path: str | os.PathLike) -> None:
    """Write `model` for `tinysr.runtime` as one `.npz` file, atomically."""
    atomic_write_bytes(path, numpy_export_bytes(model))
