"""Turn a `--model` value into an upscaler: "bicubic", a weights file, a run folder, or a bundled model name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tinysr.errors import TinySRError
from tinysr.evaluate import Upscaler, bicubic_upscaler
from tinysr.infer.upscale import network_window_fn, upscale_array
from tinysr.models import deployed
from tinysr.models.weights import load_model
from tinysr.pretrained import list_pretrained, pretrained_path
from tinysr.train.runs import RUN_BEST


def weights_path(spec: str) -> Path | None:
    """The weights file that `spec` names (a file, or a run folder's best weights), or None if it names none."""
    path = Path(spec)
    if path.is_dir():
        best = path / RUN_BEST
        if not best.is_file():
            raise TinySRError(f"{path}: a folder without {RUN_BEST}; is it a tinysr run folder?")
        return best
    if path.is_file():
        return path
    if path.suffix in {".safetensors", ".pt", ".pth"} or "/" in spec:
        raise TinySRError(f"{spec}: no such weights file or run folder")
    return None


def bundled_names() -> list[str]:
    """Names of the pretrained models shipped inside the package."""
    return list_pretrained()


def load_network(spec: str, *, scale: int | None) -> tuple[torch.nn.Module, str]:
    """(model, description) for a weights file, run folder or bundled name; the model is the deployed (folded)
    network, which gives the same output with fewer convs."""
    path = weights_path(spec)
    if path is None:
        if spec not in bundled_names():
            known = ", ".join(bundled_names()) or "none bundled"
            raise TinySRError(f"unknown model {spec!r}: give a weights file, a run folder, or a bundled model "
                              f"({known})")
        path = pretrained_path(spec)
    model, _ = load_model(path, scale=scale)
    return deployed(model), str(path)


def resolve_upscaler(spec: str, *, scale: int | None, device: str = "cpu",
                     self_ensemble: bool = False) -> tuple[Upscaler, str, int]:
    """(upscaler, description, scale) for a `--model` value; `scale` None takes the network's own (bicubic, which
    has none, needs it given).

    self_ensemble: average the network's outputs over the 8 flips/rotations of the input (EDSR's "+": 8x the
    multiply-adds); the description says so, so that a report never passes it off as a single pass.
    """
    if spec == "bicubic":
        if self_ensemble:
            raise TinySRError("--self-ensemble needs a network; bicubic has nothing to average")
        if scale is None:
            raise TinySRError("--model bicubic needs --scale (a network knows its own)")
        return bicubic_upscaler(scale), "bicubic", scale
    model, desc = load_network(spec, scale=scale)
    if self_ensemble:
        window = network_window_fn(model.eval().to(device), device=device, self_ensemble=True)
        return window, f"{desc} + self-ensemble (x8)", model.config.scale

    def run(lr: np.ndarray) -> np.ndarray:
        return upscale_array(model, lr, device=device)

    return run, desc, model.config.scale
