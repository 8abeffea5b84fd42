"""The model zoo: families, named presets, `create_model`, `count_params`.

A visible dict, not a registry framework: `MODELS` maps a family name to its (config class, network class), and
`PRESETS` maps a preset name to a config. Checkpoints store `config_to_dict(config)` and rebuild with
`model_from_config_dict`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from tinysr.errors import TinySRError
from tinysr.families import config_from_dict, config_to_dict  # noqa: F401 (torch-free; re-exported)
from tinysr.models.compact import COMPACT_PRESETS, CompactConfig, CompactSR
from tinysr.models.edsr import EDSR, EDSRConfig
from tinysr.models.tiny import TINY_PRESETS, TinyConfig, TinySR

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "compact": (CompactConfig, CompactSR),
    "edsr": (EDSRConfig, EDSR),
    "tiny": (TinyConfig, TinySR),
}

PRESETS: dict[str, Any] = {
    # EDSR baseline of the paper and the study's Table I: 16 blocks x 64 filters.
    "edsr-baseline": EDSRConfig(n_blocks=16, n_feats=64),
    # The EDSR paper's large model: 32 blocks x 256 filters, residual scaling 0.1.
    "edsr-paper": EDSRConfig(n_blocks=32, n_feats=256, res_scale=0.1),
    # The study's headline: 0 blocks x 4 filters = 963 parameters at x2.
    "edsr-tiny": EDSRConfig(n_blocks=0, n_feats=4),
    # The study's Table III wide nets.
    "edsr-16x256": EDSRConfig(n_blocks=16, n_feats=256),
    "edsr-16x512": EDSRConfig(n_blocks=16, n_feats=512),
    "edsr-32x512": EDSRConfig(n_blocks=32, n_feats=512),
    # Anchored Y-only re-parameterisable nets, tiny-<budget>-x<scale>, budgets 100..5k deployed params (tiny.py).
    **TINY_PRESETS,
    # Real-ESRGAN's SRVGGNetCompact on RGB, which spandrel loads, compact-<budget>-x<scale>, budgets 1k, 5k, 20k
    # trainable params (families/compact.py).
    **COMPACT_PRESETS,
}


def list_models() -> list[str]:
    """Family names and preset names, the accepted values of `create_model`'s `name`."""
    return sorted(MODELS) + sorted(PRESETS)


def build_config(name: str, **overrides: Any) -> Any:
    """The config of a preset (with overrides) or of a family (overrides are its fields; the family is not one)."""
    if "family" in overrides:
        raise TinySRError(f"model {name!r}: the family cannot be overridden; give a model name of that family "
                          f"({', '.join(sorted(MODELS))} or one of its presets)")
    try:
        if name in PRESETS:
            return dataclasses.replace(PRESETS[name], **overrides)
        if name in MODELS:
            return MODELS[name][0](**overrides)
    except (TypeError, ValueError) as exc:
        raise TinySRError(f"model {name!r}: {exc}") from None
    raise TinySRError(f"unknown model {name!r}; known: {', '.join(list_models())}")


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a network by preset or family name, e.g. `create_model("edsr", n_blocks=0, n_feats=4, scale=2)`."""
    return model_from_config(build_config(name, **overrides))


def model_from_config(config: Any) -> nn.Module:
    return MODELS[config.family][1](config)


def model_from_config_dict(data: dict[str, Any]) -> nn.Module:
    return model_from_config(config_from_dict(data))


def deployed(model: nn.Module) -> nn.Module:
    """The network as it is shipped and run: a re-parameterised tiny net folded into plain convs (same output up to
    float rounding), any other model as it is."""
    if callable(getattr(model, "collapse", None)) and not model.config.collapsed:
        return model.collapse()
    return model


def count_params(model: nn.Module) -> int:
    """Trainable parameters, as counted in the study's tables (buffers such as the RGB mean excluded); a torch-free
    `tinysr.infer.network.Network` counts its deployed tensors the same way (`n_params`)."""
    if hasattr(model, "n_params"):
        return int(model.n_params)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "EDSR", "MODELS", "PRESETS", "CompactConfig", "CompactSR", "EDSRConfig", "TinyConfig", "TinySR",
    "anchor_macs_per_output", "build_config",
    "config_from_dict", "config_to_dict", "count_params", "create_model", "deployed", "list_models", "macs_per_output",
    "model_from_config", "model_from_config_dict",
]
