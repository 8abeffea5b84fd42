"""Typed run configs: what a run is, as frozen dataclasses that config.json and checkpoints carry.

Torch-free, so that the command line can name the choices (losses, schedules) without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinysr.errors import TinySRError
from tinysr.metrics import PROTOCOLS

SCHEDULES = ("step", "cosine")
#: The training losses by name; `tinysr.train.losses.LOSSES` implements exactly these.
LOSS_NAMES = ("l1", "l1-y", "mse-y")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; `dataclasses.asdict` of it is config.json's "train" entry.

    schedule "step": learning_rate * lr_gamma ** (step // lr_step); "cosine": from learning_rate down to 0 at `steps`.
    val_limit: validate on the first `val_limit` images only (None: all of them).
    protocol: the validation protocol, a key of `tinysr.metrics.PROTOCOLS`.
    loss: the training loss, a key of `tinysr.train.losses.LOSSES`; final_loss (with final_fraction > 0): the loss of the
        last `final_fraction` of the steps instead (e.g. "mse-y": fit the squared error that PSNR measures once L1
        has done the early work). A fraction, not a step count, so that the phase scales with --steps.
        metrics.jsonl's train_loss is the loss being optimised, so it changes units there (mse-y: squared grey
        levels).
    revive_every: with a tiny ReLU net, every this many steps (0: never) re-initialise the hidden units that are
        dead on the training images (`tinysr.train.revive`), up to REVIVE_UNTIL of the schedule (later, a fresh unit
        would have too little learning rate left to become useful).
    """

    steps: int = 300_000
    batch_size: int = 1
    patch: int = 48
    learning_rate: float = 1e-4
    schedule: str = "step"
    lr_step: int = 200_000
    lr_gamma: float = 0.5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    augment: bool = True
    eval_every: int = 1000
    val_limit: int | None = None
    protocol: str = "study"
    seed: int = 0
    loss: str = "l1"
    final_loss: str | None = None
    final_fraction: float = 0.0
    revive_every: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "patch", "lr_step", "eval_every"):
            if getattr(self, name) < 1:
                raise TinySRError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.val_limit is not None and self.val_limit < 1:
            raise TinySRError(f"val_limit must be >= 1, got {self.val_limit}")
        if not self.learning_rate > 0:
            raise TinySRError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.schedule not in SCHEDULES:
            raise TinySRError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.loss not in LOSS_NAMES:
            raise TinySRError(f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSS_NAMES)}")
        if self.final_loss is not None and self.final_loss not in LOSS_NAMES:
            raise TinySRError(f"unknown final_loss {self.final_loss!r}; choose one of: {', '.join(LOSS_NAMES)}")
        if not 0 <= self.final_fraction <= 1 or (self.final_fraction > 0) != (self.final_loss is not None):
            raise TinySRError(f"final_fraction must be in 0..1 and > 0 exactly when final_loss is given; got "
                              f"{self.final_fraction} with final_loss {self.final_loss!r}")
        if self.revive_every < 0:
            raise TinySRError(f"revive_every must be >= 0, got {self.revive_every}")
        if self.protocol not in PROTOCOLS:
            raise TinySRError(f"unknown protocol {self.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
