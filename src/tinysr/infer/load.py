"""Turn a `--model` value into a network or an upscaler: "bicubic", a weights file, a run folder, or a bundled name.
Torch-free: weights are read by `tinysr.infer.weights` and built into a `tinysr.infer.network.Network`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysr.errors import TinySRError
from tinysr.evaluate import Upscaler, bicubic_upscaler
from tinysr.infer.network import Network, network_from_state
from tinysr.infer.upscale import network_window_fn, upscale_float
from tinysr.infer.weights import parse_config, read_weights
from tinysr.pretrained import list_pretrained, pretrained_path
from tinysr.runfolder import RUN_BEST


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


def resolve_weights(spec: str) -> Path:
    """The weights file of a `--model` value (file, run folder or bundled name); an unknown name is an error."""
    path = weights_path(spec)
    if path is None:
        if spec not in bundled_names():
            known = ", ".join(bundled_names()) or "none bundled"
            raise TinySRError(f"unknown model {spec!r}: give a weights file, a run folder, or a bundled model "
                              f"({known})")
        path = pretrained_path(spec)
    return path


def load_weights_file(path: str | Path, *, scale: int | None = None, trust: bool = False) -> Network:
    """The deployed `Network` of a weights file; `scale`, when given, must be the file's; `trust`: load a file
    without a digest (with a warning; `tinysr.integrity.require_digest`)."""
    state, config_dict, _ = read_weights(path, trust=trust)
    config = parse_config(path, config_dict)
    if scale is not None and config.scale != scale:
        raise TinySRError(f"{path}: the model is x{config.scale}, but x{scale} was requested")
    return network_from_state(config, state, source=str(path))


def load_network(spec: str, *, scale: int | None, trust: bool = False) -> tuple[Network, str]:
    """(network, description) for a weights file, run folder or bundled name; the network is the deployed (folded)
    one, which gives the same output with fewer convs. trust: the caller vouches for a weights file without a
    digest (a bundled model is always checked, against the digest `models.json` records for its file)."""
    path = resolve_weights(spec)
    return load_weights_file(path, scale=scale, trust=trust), str(path)


def resolve_upscaler(spec: str, *, scale: int | None, device: str = "cpu", self_ensemble: bool = False,
                     trust: bool = False) -> tuple[Upscaler, str, int]:
    """(upscaler, description, scale) for a `--model` value; `scale` None takes the network's own (bicubic, which
    has none, needs it given). The upscaler returns HWC float32 0..255, unrounded (the protocol rounds).

    self_ensemble: average the network's outputs over the 8 flips/rotations of the input (EDSR's "+": 8x the
    multiply-adds); the description says so, so that a report never passes it off as a single pass.
    trust: as `load_network`'s.
    """
    if spec == "bicubic":
        if self_ensemble:
            raise TinySRError("--self-ensemble needs a network; bicubic has nothing to average")
        if scale is None:
            raise TinySRError("--model bicubic needs --scale (a network knows its own)")
        return bicubic_upscaler(scale), "bicubic", scale
    model, desc = load_network(spec, scale=scale, trust=trust)
    if self_ensemble:
        window = network_window_fn(model, device=device, self_ensemble=True, fused=False)
        return window, f"{desc} + self-ensemble (x8)", model.scale

    def run(lr: np.ndarray) -> np.ndarray:
        return upscale_float(model, lr, device=device)

    return run, desc, model.scale
