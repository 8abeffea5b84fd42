"""Dead-unit revival for tiny ReLU nets: hidden units that never fire get fresh weights while training.

Why: a hidden ReLU unit whose pre-activation is negative everywhere passes no gradient, so it stays dead and its
weights are lost capacity. At 1k parameters that is a large share: the first bundled 886-parameter x2 net (70k
steps) had 2 of the 7 units of its hidden layer silent on every training pixel (198 of its 886 parameters unused),
and the 844-parameter x4 net 2 of its 4. Re-initialising them after training and training on gained 0.06-0.09 dB
on the held-out training images (benchmarks/tiny_ablation.py --revive, RESULTS.md "tiny").

What `revive_dead_units` does, for each hidden ReLU layer of a plain-conv `TinySR`: the units that are not positive
on any pixel of a fixed probe batch get fresh incoming weights (Kaiming normal) and a small positive bias, so they
fire again, and zero outgoing weights, so the network's output is unchanged at that moment; their Adam moments are
reset. Randomness comes from torch's global generator (saved in last.pt, so a resumed run revives identically).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError
from tinysr.models.ops import rgb_to_luma

#: Bias of a revived unit, in the 0..1 units the tiny nets see: positive so that it fires on most inputs at first.
REVIVED_BIAS = 0.05
#: Probe: central LR crops of this side from the first `PROBE_IMAGES` training images (no randomness).
PROBE_SIDE = 48
PROBE_IMAGES = 32


def check_revivable(model: nn.Module) -> None:
    """Raise unless `model` is a tiny net of plain convs with ReLU (what `revive_dead_units` can edit)."""
    config = getattr(model, "config", None)
    if getattr(config, "family", None) != "tiny" or config.expand > 1 or config.act != "relu" or config.n_layers < 2:
        raise TinySRError("revive_every needs a tiny net (family tiny) with plain convs (expand 1), ReLU and at "
                          "least 2 layers")


def probe_batch(pairs: PairedImages) -> torch.Tensor:
    """NCHW float RGB 0..255: the central PROBE_SIDE crop (or the whole LR image if smaller, cropped to the
    smallest) of each of the first PROBE_IMAGES training images."""
    lrs = [torch.from_numpy(np.array(lr)) for lr in pairs.lr[:PROBE_IMAGES]]
    if not lrs:
        raise TinySRError("revive: no training images to probe")
    side = min(PROBE_SIDE, *(min(lr.shape[:2]) for lr in lrs))
    crops = []
    for lr in lrs:
        y0, x0 = (lr.shape[0] - side) // 2, (lr.shape[1] - side) // 2
        crops.append(lr[y0:y0 + side, x0:x0 + side].permute(2, 0, 1))
    return torch.stack(crops).float()


@torch.no_grad()
def hidden_activity(model: nn.Module, probe: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden layer, the fraction of probe pixels on which each unit is positive (after its ReLU)."""
    was_training = model.training
    model.eval()
    h = rgb_to_luma(probe) / 255.0 if model.config.channels == "y" else probe / 255.0
    rates = []
    for conv, act in zip(model.convs[:-1], model.acts):
        h = act(conv(h))
        rates.append((h > 0).float().mean(dim=(0, 2, 3)))
    model.train(was_training)
    return rates


def _reset_moments(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, index: tuple) -> None:
    state = optimizer.state.get(param, {}) if optimizer is not None else {}
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key][index] = 0.0


@torch.no_grad()
def revive_dead_units(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                      probe: torch.Tensor) -> list[tuple[int, int]]:
    """Re-initialise every hidden unit that is never positive on `probe`; returns the (layer, unit) pairs revived.

    The output of `model` is unchanged (the revived units' outgoing weights are zero); see the module docstring.
    """
    check_revivable(model)
    revived = []
    for layer, rate in enumerate(hidden_activity(model, probe)):
        conv, after = model.convs[layer], model.convs[layer + 1]
        for unit in (rate == 0).nonzero().flatten().tolist():
            fresh = torch.empty_like(conv.weight[unit:unit + 1])
            nn.init.kaiming_normal_(fresh, nonlinearity="relu")
            conv.weight[unit] = fresh[0]
            conv.bias[unit] = REVIVED_BIAS
            after.weight[:, unit] = 0.0
            for param, index in ((conv.weight, (unit,)), (conv.bias, (unit,)), (after.weight, (slice(None), unit))):
                _reset_moments(optimizer, param, index)
            revived.append((layer, unit))
    return revived
