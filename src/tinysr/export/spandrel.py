"""`tinysr export --format spandrel`: a compact net as the state dict that spandrel (chaiNNer, ComfyUI) detects as
its Compact architecture (Real-ESRGAN's SRVGGNetCompact), read at spandrel 0.4.2.

The compact family's torch net (`tinysr.models.compact.CompactSR`) has SRVGGNetCompact's modules and keys, so the
export is its state dict, checked against spandrel's layout (`tinysr.families.compact`: ``body.{2i}`` convs,
``body.{2i+1}`` PReLU slopes, the last conv to 3 scale^2 channels) and written in float32:
* OUT.safetensors: safetensors, which spandrel reads with `safetensors.torch.load_file`. The header also carries
  tinysr's config and digest (`tinysr.models.weights.save_weights`), which spandrel ignores: the file is a tinysr
  weights file too (`tinysr upscale --model OUT.safetensors`);
* OUT.pth: `torch.save` of the plain dict of tensors in body order, which spandrel's restricted unpickler accepts
  (tensors only).
What spandrel does with it: it feeds RGB in 0..1 and clamps the output to 0..1; the net inside tinysr's 0..255
wrapper is the same (`CompactSR.forward_unit`), so both give the same pixels up to float rounding.

Only the compact family has a spandrel architecture: tiny nets (bicubic anchor, Y only) and EDSR (a mean shift,
staged upsampling) are none of spandrel's, and are refused with a one-line error.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.families.compact import CompactConfig, shapes
from tinysr.models.weights import save_weights

#: The suffixes spandrel's `ModelLoader.load_from_file` reads a state dict from, that this export writes.
SUFFIXES = (".safetensors", ".pth")
#: spandrel's architecture id for these files, and the release whose loader this module follows.
ARCHITECTURE, SPANDREL_VERSION = "Compact", "0.4.2"


def spandrel_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The float32 state dict spandrel loads as Compact, in body order; TinySRError for a net of another family."""
    config = getattr(model, "config", None)
    if not isinstance(config, CompactConfig):
        family = getattr(config, "family", type(model).__name__)
        raise TinySRError(f"--format spandrel exports only compact nets (spandrel's {ARCHITECTURE}); this is a "
                          f"{family} net")
    state = {k: v.detach().cpu().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    found, expected = {k: tuple(v.shape) for k, v in state.items()}, shapes(config)
    if found != expected:  # a net built from this config always matches; a hand-made module may not
        bad = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        raise TinySRError(f"the compact net's state dict is not spandrel's layout (first difference: {bad[0]!r})")
    return state  # in the module's order: body.0.weight, body.0.bias, body.1.weight, ...


def export_spandrel(model: nn.Module, out: str | Path) -> None:
    """Write `model` (a compact net) to `out`, a .safetensors or .pth file (see the module docstring)."""
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise TinySRError(f"{out}: --format spandrel writes a {' or a '.join(SUFFIXES)} file; give OUT one of "
                          "these suffixes")
    state = spandrel_state_dict(model)
    if out.suffix == ".pth":
        torch.save(state, out)
        return
    model = copy.deepcopy(model).to("cpu", torch.float32)  # the tensors `spandrel_state_dict` checked, as saved
    save_weights(out, model, meta={"exported_for": f"spandrel {ARCHITECTURE}"})
