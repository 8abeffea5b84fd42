"""Model families as torch-free descriptors: each family's deployment facts in one place.

A visible dict, `FAMILIES`, maps a family name to its `Family`: the config class, the state dict's tensor shapes
(`shapes`: checked before anything is built; `buffers`: those that are not trained parameters), how to fold a trained state dict
into the deployed one (`fold_arrays`), and the deployed forward pass as a program of the engine's ops (`program`,
plus the constant arrays it needs, `constants`). The torch networks (`tinysr.models`), the engine (`tinysr.infer`)
and the NumPy export read these; a new family adds one module here and one entry below.

Checkpoints store `config_to_dict(config)` and rebuild with `config_from_dict`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysr.errors import TinySRError
from tinysr.families import compact, edsr, tiny


@dataclass(frozen=True)
class Family:
    """One family's deployment facts (see the module docstring)."""

    config: type
    buffers: tuple[str, ...]
    shapes: Callable[[Any], dict[str, tuple[int, ...]]]
    fold_arrays: Callable[[Any, dict[str, np.ndarray]], tuple[Any, dict[str, np.ndarray]]]
    program: Callable[[Any], list[dict[str, Any]]]
    constants: Callable[[Any], dict[str, np.ndarray]]


FAMILIES: dict[str, Family] = {
    "compact": Family(compact.CompactConfig, (), compact.shapes, compact.fold_arrays, compact.program,
                      compact.constants),
    "edsr": Family(edsr.EDSRConfig, edsr.BUFFERS, edsr.shapes, edsr.fold_arrays, edsr.program, edsr.constants),
    "tiny": Family(tiny.TinyConfig, (), tiny.shapes, tiny.fold_arrays, tiny.program, tiny.constants),
}


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config's fields plus its "family" (a class constant), as checkpoints and run folders store it."""
    return dataclasses.asdict(config) | {"family": config.family}


def config_from_dict(data: dict[str, Any]) -> Any:
    """The inverse of `config_to_dict`; "family" picks the config class (EDSR when absent, as in old checkpoints)."""
    data = dict(data)
    family = data.pop("family", "edsr")
    if family not in FAMILIES:
        raise TinySRError(f"unknown model family {family!r} in config; known: {', '.join(sorted(FAMILIES))}")
    fields = {f.name for f in dataclasses.fields(FAMILIES[family].config)}
    unknown = set(data) - fields
    if unknown:
        raise TinySRError(f"config has unknown fields for {family}: {', '.join(sorted(unknown))}")
    return FAMILIES[family].config(**data)
