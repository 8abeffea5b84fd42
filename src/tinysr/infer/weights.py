"""Weights files read without torch: the arrays, the config and the metadata of a tinysr `.safetensors` file.

The format is `tinysr.models.weights`' (which writes it): tensors plus `tinysr_config` (the model config as JSON),
`tinysr_meta` and `tinysr_sha256` (the tensors' digest, `tinysr.integrity`) in the header. Here the tensors come
back as float32 NumPy arrays through safetensors' NumPy API, and the digest is checked (it equals the one torch
computes on the same tensors): a file without one loads only with `trust=True` (--trust), with a warning. NaN,
infinity and magnitudes beyond `tinysr.integrity.MAX_MAGNITUDE` are refused, in the tensors and in the config's
floats, and the arrays are checked against the config's shapes before anything is built. A weights-only torch file
(`.pt`/`.pth`) needs torch: with it installed it is read by `tinysr.models.weights`; without it, the error names the
extra.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tinysr.errors import TinySRError, one_line
from tinysr.families import config_from_dict
from tinysr.integrity import Tensors, check_config_values, check_digest, check_weight_values, require_digest
from tinysr.weights_file import weights_file

#: The extra that brings torch, named in every error of a job that needs it.
TORCH_EXTRA = "pip install 'tinysr[train]'"


def torch_available() -> bool:
    """Whether torch is installed (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _read_safetensors(path: Path) -> tuple[Tensors, dict[str, str]]:
    from safetensors import SafetensorError, safe_open  # the Rust reader; its NumPy API needs no torch

    try:
        with safe_open(str(path), framework="np") as f:
            metadata = f.metadata() or {}
            state = Tensors({key: f.get_tensor(key) for key in f.keys()})
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise TinySRError(f"{path}: not a readable safetensors file ({one_line(exc)})") from None
    return state, metadata


def _read_torch_file(path: Path, *, trust: bool) -> tuple[Tensors, dict[str, Any], dict[str, Any]]:
    if not torch_available():
        raise TinySRError(f"{path}: a torch checkpoint; reading it needs torch ({TORCH_EXTRA}), or give the run's "
                          "best.safetensors")
    from tinysr.models.weights import read_weights  # torch is installed: its reader refuses code-running pickles

    state, config, meta = read_weights(path, trust=trust)
    return Tensors({k: v.detach().cpu().numpy() for k, v in state.items()}), config, meta


def read_weights(path: str | os.PathLike, *, trust: bool = False) -> tuple[Tensors, dict[str, Any], dict[str, Any]]:
    """(state dict of NumPy arrays, config dict, meta dict) of a weights file, checked (see the module doc); `trust`:
    the caller vouches for a file without a digest."""
    path = weights_file(path)
    if path.suffix != ".safetensors":
        return _read_torch_file(path, trust=trust)
    state, metadata = _read_safetensors(path)
    if "tinysr_config" not in metadata:
        raise TinySRError(f"{path}: safetensors file without a tinysr config")
    require_digest(metadata.get("tinysr_sha256"), path=path, trust=trust)
    check_digest(state, metadata.get("tinysr_sha256"), path=path)
    try:
        config, meta = json.loads(metadata["tinysr_config"]), json.loads(metadata.get("tinysr_meta", "{}"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise TinySRError(f"{path}: its tinysr config is not JSON ({getattr(exc, 'msg', 'too deep')})") from None
    check_weight_values(state, path=path)
    return state, config, meta


def parse_config(path: str | os.PathLike, config_dict: Any) -> Any:
    """The family config of a file's config dict; a malformed one, or a float field that is not finite or beyond
    `tinysr.integrity.MAX_MAGNITUDE` (a NaN res_scale upscales to black), is an error naming the file."""
    try:
        config = config_from_dict(config_dict)
    except TinySRError as exc:
        raise TinySRError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # not a dict, bad fields
        raise TinySRError(f"{path}: malformed tinysr config ({one_line(exc)})") from None
    check_config_values(config, path=path)
    return config


def as_float32(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state dict as contiguous float32 arrays, the engine's dtype."""
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
