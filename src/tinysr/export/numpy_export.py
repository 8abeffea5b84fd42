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
from tinysr.errors import TinySRError
from tinysr.export.runtime import export_digest
from tinysr.models import config_to_dict, deployed
from tinysr.families import FAMILIES

PROGRAM_FORMAT = 1


#: Family name -> program writer, and -> constant arrays the program needs besides the state dict.
PROGRAMS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {name: f.program for name, f in FAMILIES.items()}
CONSTANTS: dict[str, Callable[[Any], dict[str, np.ndarray]]] = {name: f.constants for name, f in FAMILIES.items()}


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
