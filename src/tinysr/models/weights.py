"""Weights files: safetensors with the model config inside, so loading needs nothing but the file.

Format: a `.safetensors` file whose metadata holds `tinysr_config` (the model config as JSON), `tinysr_meta`
(free JSON metadata such as the training step or validation PSNR) and `tinysr_sha256` (the tensors' digest,
`tinysr.integrity`: checked on load, so a damaged file is an error naming it; a file without one, such as a torch
`.pt` file, loads only with `trust=True` (--trust), with a warning). A config is checked against the tensors on the
meta device before any memory is allocated, and weights or config floats holding NaN, infinity or magnitudes beyond
`tinysr.integrity.MAX_MAGNITUDE` are refused. Loading never unpickles code: safetensors holds
tensors only, and `.pt`/`.pth` files go through `torch.load(weights_only=True)`, which refuses a pickle that would
run code. Writes are atomic (`tinysr.atomic`).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from tinysr import __version__
from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError, one_line
from tinysr.models import config_from_dict, config_to_dict, model_from_config
from tinysr.integrity import check_config_values, check_digest, check_weight_values, digest, require_digest
from tinysr.weights_file import weights_file


def save_weights(path: str | os.PathLike, model: nn.Module, *, meta: dict[str, Any] | None = None) -> None:
    """Save a model's state (parameters and buffers) with its config, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "tinysr_config": json.dumps(config_to_dict(model.config)),
        "tinysr_meta": json.dumps({"tinysr_version": __version__, **(meta or {})}),
        "tinysr_sha256": digest(tensors),
    }
    atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=metadata)))


def canonical_safetensors(data: bytes) -> bytes:
    """The same file with its JSON header's keys sorted, so that equal weights give equal bytes.

    Hand-rolled because safetensors writes its header from a hash map, whose order changes from process to process.
    The format: an 8-byte little-endian header length, the JSON header padded with spaces to a multiple of 8, then
    the tensor data, whose offsets are relative to its own start (so re-writing the header moves nothing).
    """
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n:]


def _read_safetensors(path: Path, *, trust: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise TinySRError(f"{path}: not a readable safetensors file ({one_line(exc)})") from None
    if "tinysr_config" not in metadata:
        raise TinySRError(f"{path}: safetensors file without a tinysr config")
    require_digest(metadata.get("tinysr_sha256"), path=path, trust=trust)
    check_digest(state, metadata.get("tinysr_sha256"), path=path)
    try:
        config, meta = json.loads(metadata["tinysr_config"]), json.loads(metadata.get("tinysr_meta", "{}"))
    except json.JSONDecodeError as exc:
        raise TinySRError(f"{path}: its tinysr config is not JSON ({exc.msg})") from None
    return state, config, meta


def _read_torch(path: Path, *, trust: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols first: the error must stay one line
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text is a paragraph that suggests weights_only=False; keep only what it found
        found = [line.strip() for line in str(exc).splitlines() if "unsupported" in line.lower()]
        detail = f" ({found[0]})" if found else ""
        raise TinySRError(f"{path}: refused to load a pickle that would run code{detail}") from None
    except Exception as exc:  # torch raises assorted types for non-checkpoint files
        raise TinySRError(f"{path}: not a readable weights file ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or "config" not in obj or "model" not in obj:
        raise TinySRError(f"{path}: a torch file without tinysr 'config' and 'model' entries")
    require_digest(None, path=path, trust=trust)  # tinysr writes no torch weights files: none records a digest
    return obj["model"], obj["config"], obj.get("meta", {})


def read_weights(path: str | os.PathLike, *,
                 trust: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(state dict, config dict, meta dict) of a weights file; safetensors, or a weights-only torch file. `trust`:
    the caller vouches for a file without a digest."""
    path = weights_file(path)
    return _read_safetensors(path, trust=trust) if path.suffix == ".safetensors" else _read_torch(path, trust=trust)


def _config(path: Path, config_dict: Any) -> Any:
    try:
        config = config_from_dict(config_dict)
    except TinySRError as exc:
        raise TinySRError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a malformed config: not a dict, bad fields
        raise TinySRError(f"{path}: malformed tinysr config ({one_line(exc)})") from None
    check_config_values(config, path=path)
    return config


def _check_shapes(path: Path, config: Any, state: dict[str, torch.Tensor]) -> None:
    """The config's tensors against the file's, on the meta device: a config that asks for 360 GB costs nothing."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model_from_config(config).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        bad = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        raise TinySRError(f"{path}: weights do not match the config (first difference: {bad[0]!r})")


def load_model(path: str | os.PathLike, *, scale: int | None = None,
               trust: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a weights file; `scale`, when given, must match the file's config; `trust`: load a file
    without a digest (with a warning)."""
    path = Path(path)
    state, config_dict, meta = read_weights(path, trust=trust)
    config = _config(path, config_dict)
    if scale is not None and config.scale != scale:
        raise TinySRError(f"{path}: the model is x{config.scale}, but x{scale} was requested")
    _check_shapes(path, config, state)
    check_weight_values(state, path=path)
    model = model_from_config(config)
    model.load_state_dict(state)
    return model.eval(), meta
