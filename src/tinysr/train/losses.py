"""Training losses: one name per loss, each a function ``(model, lr, hr) -> 0-dim tensor``, in 0..255 units.

Convention: ``lr`` and ``hr`` are NCHW float RGB batches in 0..255 (the sampler's convention); the loss is a mean
absolute error on the 0..255 scale, so its value reads as "grey levels off on average".

* ``l1``: L1 on RGB, the study's (and EDSR's) loss.
* ``l1-y``: L1 on luma, MATLAB ``rgb2ycbcr``'s Y (16..235), the channel the `standard` protocol measures. A
  Y-only tiny net (`channels="y"`) predicts only Y, its Cb/Cr are bicubic and carry no gradient: under ``l1`` its
  Y is pulled towards whatever offsets the fixed chroma errors put on R, G and B; under ``l1-y`` it fits Y alone,
  and skips the chroma upsampling (`TinySR.forward_luma`). On the 886-parameter x2 net, 4,000 steps, 10 held-out
  training images: 31.31 dB against 31.17 dB under ``l1``, at 0.65x the time per step (benchmarks/tiny_ablation.py).
* ``mse-y``: mean squared error on luma (in 0..255 units squared), what PSNR measures. Worse than ``l1-y`` from
  scratch (31.21 against 31.31 dB in the same ablation), but as a final phase after it (`TrainConfig.final_loss`) it
  adds about 0.03 dB where more ``l1-y`` steps add nothing (the bundled 1k x2 net, 3,000 steps at 2e-4: 31.58
  against 31.55 dB).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tinysr.models.ops import rgb_to_ycbcr
from tinysr.train.config import LOSS_NAMES

Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def l1_rgb(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(model(lr).float(), hr)


def predict_luma(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """Y (N1HW, 16..235 scale, unrounded) of the model's output: the model's own `forward_luma` where it has one."""
    forward_luma = getattr(model, "forward_luma", None)
    if callable(forward_luma):
        return forward_luma(lr)
    return rgb_to_ycbcr(model(lr).float())[:, :1]


def l1_luma(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(predict_luma(model, lr).float(), rgb_to_ycbcr(hr)[:, :1])


def mse_luma(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(predict_luma(model, lr).float(), rgb_to_ycbcr(hr)[:, :1])


LOSSES: dict[str, Loss] = {"l1": l1_rgb, "l1-y": l1_luma, "mse-y": mse_luma}
assert tuple(LOSSES) == LOSS_NAMES, "train.config.LOSS_NAMES names exactly the losses implemented here"
