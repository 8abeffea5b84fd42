"""Polish: fit a trained net, on whole training images, to the very number the evaluation reports.

Training samples 48 x 48 patches and minimises L1 or squared error per pixel: a proxy. What a table reports is the
mean over images of the protocol's PSNR on whole images (`standard`: Y, a `scale`-pixel border cropped). Polishing
minimises exactly that, unrounded, on the training images:

    objective = mean_i PSNR_i = 10 log10(255^2) - mean_i 10 log10(MSE_i)

1. every training image whole (its own borders only, none of a patch's; each image weighted as the mean weighs it,
   so a well-restored image counts as much as a hard one, which a per-pixel loss does not do);
2. the full batch each step, no sampling noise;
3. L-BFGS with a strong-Wolfe line search (`torch.optim.LBFGS`), which for a net of a few thousand parameters
   converges in tens of passes over the data where Adam would need thousands of noisy steps;
4. the held-out images validated after every step, and the best weights kept (step 0, the net as it came, is one
   of the candidates, so polishing never loses on them).

A last stage for small nets: one pass costs a forward and a backward over the whole training set per line-search
evaluation (about 6 s for the 940-parameter x2 net on T91 + BSD200, two threads). Rounding to uint8 has no gradient,
so the objective is the unrounded PSNR; validation uses the protocol as it is (rounded).

Convention: pairs are `PairedImages` (HWC RGB uint8); the model takes and returns NCHW float RGB in 0..255 (the
EDSR contract); PSNR in dB under a `tinysr.metrics.PROTOCOLS` entry.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError
from tinysr.metrics import PROTOCOLS, Protocol
from tinysr.models.ops import rgb_to_luma

PEAK_DB = 20.0 * math.log10(255.0)


@dataclass(frozen=True)
class PolishConfig:
    """How to polish; config.json's "polish" entry (with the source run) in a polished run folder.

    steps: L-BFGS steps, each followed by a validation.
    evals_per_step: L-BFGS iterations per step (LBFGS `max_iter`); with the line search, a step makes up to
        1.25 x this many objective evaluations (passes over the training set, LBFGS's default `max_eval`).
    history: L-BFGS memory (pairs of updates kept).
    protocol: whose PSNR is maximised and validated, a key of `tinysr.metrics.PROTOCOLS`.
    """

    steps: int = 8
    evals_per_step: int = 10
    history: int = 20
    protocol: str = "standard"

    def __post_init__(self) -> None:
        for name in ("steps", "evals_per_step", "history"):
            if getattr(self, name) < 1:
                raise TinySRError(f"polish {name} must be >= 1, got {getattr(self, name)}")
        if self.protocol not in PROTOCOLS:
            raise TinySRError(f"unknown protocol {self.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


@dataclass
class PolishResult:
    best_step: int
    best_psnr: float  # validation PSNR (the protocol, rounded) of the kept weights
    start_psnr: float  # the same before polishing
    train_psnr: float  # the objective (unrounded, training images) of the kept weights


# ---------------------------------------------------------------- step 1: whole images, as tensors

def whole_images(pairs: PairedImages) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR, HR) of each pair as 1x3xHxW float32 tensors in 0..255 (the cache's uint8 pixels, not rescaled)."""
    def tensor(img: np.ndarray) -> torch.Tensor:
        # a copy: the cache is read-only
        return torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)[None]

    return [(tensor(np.asarray(lr)), tensor(np.asarray(hr))) for lr, hr in zip(pairs.lr, pairs.hr)]


# ---------------------------------------------------------------- step 2: the objective

def _measured(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor, protocol: Protocol,
              scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(SR, HR) as the protocol measures them, unrounded: Y (16..235) or RGB, the border cropped."""
    if protocol.channel == "y":
        luma = getattr(model, "forward_luma", None)  # a tiny net's Y without the chroma it does not change
        sr, hr = (luma(lr) if luma is not None else rgb_to_luma(model(lr))), rgb_to_luma(hr)
    else:
        sr = model(lr)
    if protocol.crop_border:
        sr, hr = sr[..., scale:-scale, scale:-scale], hr[..., scale:-scale, scale:-scale]
    return sr, hr


def mean_psnr(model: nn.Module, images: list[tuple[torch.Tensor, torch.Tensor]], *, scale: int,
              protocol: Protocol, backward: bool = False) -> float:
    """Mean over images of the unrounded PSNR (dB); with `backward`, accumulate the gradient of minus it in .grad.

    One image at a time, so memory is that of the largest image, whatever the set.
    """
    total = 0.0
    for lr, hr in images:
        with torch.set_grad_enabled(backward):
            sr, target = _measured(model, lr, hr, protocol, scale)
            loss = 10.0 * torch.log10(torch.mean((sr - target) ** 2)) / len(images)  # mean of -PSNR, less the peak
            if backward:
                loss.backward()
        total += float(loss.detach())
    if not math.isfinite(total):
        raise TinySRError("polish: the objective is not finite (an image the net restores exactly, or a NaN)")
    return PEAK_DB - total


def check_polishable(model_config: object, protocol: Protocol) -> None:
    """Refuse a net (given by its config) whose colours go through the network under a luma protocol: fitting Y
    alone would leave its Cb/Cr free to drift (a Y-only tiny net upsamples them bicubically, so only luma is its
    to change)."""
    if protocol.channel == "y" and getattr(model_config, "channels", "rgb") != "y":
        raise TinySRError(f"polish: the {protocol.name} protocol measures luma only, and this net changes colour too "
                          f"(its chroma would be left free); polish Y-only nets, or an RGB net validated under an "
                          f"RGB protocol (study)")


# ---------------------------------------------------------------- step 3: one L-BFGS step

def make_optimizer(model: nn.Module, config: PolishConfig) -> torch.optim.LBFGS:
    return torch.optim.LBFGS([p for p in model.parameters() if p.requires_grad], lr=1.0,
                             max_iter=config.evals_per_step, history_size=config.history,
                             line_search_fn="strong_wolfe")


def polish_step(model: nn.Module, optimizer: torch.optim.LBFGS, images: list[tuple[torch.Tensor, torch.Tensor]], *,
                scale: int, protocol: Protocol) -> float:
    """One L-BFGS step (`evals_per_step` iterations); the training PSNR after it (one more pass, to report it)."""
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        return torch.tensor(PEAK_DB - mean_psnr(model, images, scale=scale, protocol=protocol, backward=True))

    optimizer.step(closure)
    return mean_psnr(model, images, scale=scale, protocol=protocol)


# ---------------------------------------------------------------- step 4: the loop, keeping the best on validation

#: on_step(step, train_psnr, val_psnr, val_ssim, seconds, improved): logging and saving, the caller's business.
OnStep = Callable[[int, float, float, float, float, bool], None]


def polish(model: nn.Module, train_pairs: PairedImages, val_pairs: PairedImages, *, config: PolishConfig,
           validate: Callable[[nn.Module], tuple[float, float]], on_step: OnStep | None = None) -> PolishResult:
    """Polish `model` in place (left holding the best weights on validation) and say how it went.

    `validate(model)` -> (PSNR, SSIM) on the held-out images under `config.protocol` (rounded, as reported).
    Step 0 is the model as given.
    """
    if train_pairs.scale != val_pairs.scale:
        raise TinySRError(f"polish: training pairs are x{train_pairs.scale}, validation pairs x{val_pairs.scale}")
    scale, protocol = train_pairs.scale, PROTOCOLS[config.protocol]
    check_polishable(getattr(model, "config", None), protocol)
    images = whole_images(train_pairs)
    start = time.perf_counter()
    train_psnr = mean_psnr(model, images, scale=scale, protocol=protocol)
    val_psnr, val_ssim = validate(model)
    best = PolishResult(best_step=0, best_psnr=val_psnr, start_psnr=val_psnr, train_psnr=train_psnr)
    best_state = copy.deepcopy(model.state_dict())
    if on_step:
        on_step(0, train_psnr, val_psnr, val_ssim, time.perf_counter() - start, True)
    optimizer = make_optimizer(model, config)
    for step in range(1, config.steps + 1):
        train_psnr = polish_step(model, optimizer, images, scale=scale, protocol=protocol)
        val_psnr, val_ssim = validate(model)
        improved = val_psnr > best.best_psnr
        if improved:
            best = PolishResult(best_step=step, best_psnr=val_psnr, start_psnr=best.start_psnr, train_psnr=train_psnr)
            best_state = copy.deepcopy(model.state_dict())
        if on_step:
            on_step(step, train_psnr, val_psnr, val_ssim, time.perf_counter() - start, improved)
    model.load_state_dict(best_state)
    return best
