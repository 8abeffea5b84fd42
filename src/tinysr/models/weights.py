"""Weights files: safetensors with the model config inside, so loading needs nothing but the file.

Format: a `.safetensors` file whose metadata holds `tinysr_config` (the model config as JSON) and `tinysr_meta`
(free JSON metadata such as the training step or validation PSNR). Loading never unpickles code: safetensors holds
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
from tinysr.errors import TinySRError
from tinysr.models import config_from_dict, config_to_dict, model_from_config


def save_weights(path: str | os.PathLike, model: nn.Module, *, meta: dict[str, Any] | None = None) -> None:
    """Save a model's state (parameters and buffers) with its config, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "tinysr_config": json.dumps(config_to_dict(model.config)),
        "tinysr_meta": json.dumps({"tinysr_version": __version__, **(meta or {})}),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(state dict, config dict, meta dict) of a weights file; safetensors, or a weights-only torch file."""
    path = Path(path)
    if not path.is_file():
        raise TinySRError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise TinySRError(f"{path}: not a readable safetensors file ({exc})") from None
        if "tinysr_config" not in metadata:
            raise TinySRError(f"{path}: safetensors file without a tinysr config")
        return state, json.loads(metadata["tinysr_config"]), json.loads(metadata.get("tinysr_meta", "{}"))
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
    return obj["model"], obj["config"], obj.get("meta", {})


def load_model(path: str | os.PathLike, *, scale: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a weights file; `scale`, when given, must match the file's config."""
    state, config_dict, meta = read_weights(path)
    config = config_from_dict(config_dict)
    if scale is not None and config.scale != scale:
        raise TinySRError(f"{path}: the model is x{config.scale}, but x{scale} was requested")
    model = model_from_config(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise TinySRError(f"{path}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    return model.eval(), meta
