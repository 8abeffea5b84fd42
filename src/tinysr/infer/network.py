"""The engine's network: a deployed model as plain arrays, with the ways to run it, and no torch.

`Network` holds the deployed (folded) config, its float32 arrays and its program (`tinysr.infer.program`), built from
a state dict by the family's descriptor (`tinysr.families`). How a window is run is the engine's choice
(`tinysr.infer.upscale.choose_engine`): the compiled kernels for the Y-only tiny nets (`fused`), torch when it is
installed (other nets, self-ensemble, other devices), else the NumPy program. `to_torch()` is the explicit step to a
torch `nn.Module` (export, fine-tuning); it needs the [train] extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysr.errors import TinySRError
from tinysr.families import FAMILIES, config_to_dict
from tinysr.infer import fused as fused_stage
from tinysr.infer.program import Program, check_program, receptive_radius
from tinysr.infer.weights import TORCH_EXTRA, as_float32, torch_available
from tinysr.integrity import check_config_values, check_weight_values


@dataclass(frozen=True, eq=False)
class Network:
    """A deployed network (see the module docstring). config: the family config (collapsed); arrays: float32 state
    dict plus the program's constants; program: the forward pass as ops; source: where it came from (a bundled name's
    file, a weights file), for messages and reports."""

    config: Any
    arrays: dict[str, np.ndarray]
    program: Program
    source: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def scale(self) -> int:
        return int(self.config.scale)

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def n_params(self) -> int:
        """Trained parameters of the deployed net, as `tinysr.models.count_params` counts them (buffers excluded)."""
        family = FAMILIES[self.family]
        return sum(int(np.prod(shape)) for name, shape in family.shapes(self.config).items()
                   if name not in family.buffers)

    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on: the exact tiling overlap (from the program)."""
        return receptive_radius(self.program)

    @functools.cached_property
    def fused(self) -> fused_stage.FusedNet | None:
        """The net as the compiled kernels' arrays, or None where they do not apply (`fused_stage.NET_NEEDS`)."""
        return fused_stage.fused_net_from_arrays(config_to_dict(self.config), self.arrays)

    def run(self, lr: np.ndarray) -> np.ndarray:
        """The program on one window: CHW float32 RGB 0..255 -> CHW float32 0..255, `scale`x (NumPy, unrounded)."""
        from tinysr.infer.program import run

        return run(self.program, lr)

    def to_torch(self):
        """This network as a torch `nn.Module` in eval mode (the deployed form; same outputs up to float rounding):
        the explicit step for export or fine-tuning. Needs torch."""
        if "torch" not in self._cache:
            if not torch_available():
                raise TinySRError(f"{self.source or 'this network'}: running it as a torch module needs torch "
                                  f"({TORCH_EXTRA})")
            import torch

            from tinysr.models import model_from_config

            model = model_from_config(self.config)
            wanted = model.state_dict()  # the arrays hold these (some flattened) plus the program's constants
            model.load_state_dict({k: torch.from_numpy(self.arrays[k].reshape(t.shape)) for k, t in wanted.items()})
            self._cache["torch"] = model.eval()
        return self._cache["torch"]


def network_from_state(config: Any, state: dict[str, np.ndarray], *, source: str = "") -> Network:
    """A `Network` from a family config and its trained state dict (NumPy arrays), after checking the config's floats
    and every tensor's shape against the config (before any array is built from it), folding it into the deployed
    form, and checking the deployed arrays' values (finite, within `tinysr.integrity.MAX_MAGNITUDE`): whatever built
    the state dict, a net that would upscale to black is refused here."""
    check_config_values(config, path=source or "weights")
    family = FAMILIES[config.family]
    expected = family.shapes(config)
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        bad = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        raise TinySRError(f"{source or 'weights'}: weights do not match the config (first difference: {bad[0]!r})")
    deployed, arrays = family.fold_arrays(config, as_float32(state))
    check_weight_values(arrays, path=source or "weights")
    arrays |= as_float32(family.constants(deployed))
    ops = family.program(deployed)
    program = {"format": 1, "input": "lr", "output": ops[-1]["out"], "ops": ops}
    check_program(program, arrays, source or "network")
    return Network(config=deployed, arrays=arrays, source=source,
                   program=Program(ops=tuple(ops), weights=arrays, config=config_to_dict(deployed), input="lr",
                                   output=ops[-1]["out"]))
