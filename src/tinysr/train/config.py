"""Typed run configs: what a run is, as frozen dataclasses that config.json and checkpoints carry.

Torch-free, so that the command line can name the choices (losses, schedules) without importing torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from tinysr import __version__
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


@dataclass(frozen=True)
class DataConfig:
    """What a run trains and validates on; `to_dict()` is config.json's "data" entry.

    train: the training HR folders (absolute paths, or the demo's "skimage.data:NAME" labels).
    val: the validation HR folder, or None when val_split N holds N training images out (`tinysr.data.split`,
        drawn with split_seed, or with the run's seed when that is None); val_names records the held-out names
        once the split is drawn (None before).
    hr_downscale: HR images shrunk by this integer factor before the LR is made (Table I); 1: as they are.
    """

    train: tuple[str, ...]
    val: str | None
    scale: int
    degradation: str = "bicubic"
    val_split: int | None = None
    val_names: tuple[str, ...] | None = None
    split_seed: int | None = None
    hr_downscale: int = 1

    def __post_init__(self) -> None:
        if (self.val is None) == (self.val_split is None):
            raise TinySRError("validate on either a folder (--val-data) or a split of the training set (--val-split)")
        if self.split_seed is not None and self.val_split is None:
            raise TinySRError("--split-seed seeds the --val-split draw; it needs --val-split")
        if self.hr_downscale < 1:
            raise TinySRError(f"hr_downscale must be >= 1, got {self.hr_downscale}")

    def to_dict(self) -> dict[str, Any]:
        """config.json's "data": the optional entries appear only when set, as runs before them wrote it."""
        data: dict[str, Any] = {"train": list(self.train), "val": self.val, "scale": self.scale,
                                "degradation": self.degradation}
        if self.val_split is not None:
            data |= {"val_split": self.val_split, "val_names": None if self.val_names is None else list(self.val_names)}
        if self.split_seed is not None:
            data["split_seed"] = self.split_seed
        if self.hr_downscale != 1:
            data["hr_downscale"] = self.hr_downscale
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        _check_fields("data", data, cls)
        names = data.get("val_names")
        return cls(**{**data, "train": tuple(data["train"]), "val_names": None if names is None else tuple(names)})


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is: config.json, read and written by `from_dict` / `to_dict` (the layout of
    `tinysr.train.runs`). Two runs with equal RunConfigs write the same weights on CPU (`tinysr.train.start`).

    model: the model config as `tinysr.models.config_to_dict` writes it (this module stays torch-free).
    protocol, seed: the run's validation protocol and seed, as config.json has them beside "train" (equal to
        train.protocol and train.seed for every run tinysr writes).
    polish: a polished run's `PolishConfig` and source (`tinysr.train.polish_run`); None for a trained one.
    init: the weights a new run started from (`tinysr train --init`: a weights file, run folder or bundled name);
        None for a run from random weights. A resume keeps it and loads last.pt instead.
    threads: the torch CPU threads the run trains with (they change the order of the sums, so the weights);
        `tinysr.train.start.start_run` records it, and a resume keeps it. None: not recorded (runs before it).
    """

    model: dict[str, Any]
    train: TrainConfig
    data: DataConfig
    protocol: str
    seed: int
    polish: dict[str, Any] | None = None
    init: str | None = None
    threads: int | None = None
    tinysr_version: str = __version__

    def __post_init__(self) -> None:
        if self.threads is not None and (type(self.threads) is not int or self.threads < 1):
            raise TinySRError(f"threads must be an integer >= 1, got {self.threads!r}")

    def to_dict(self) -> dict[str, Any]:
        config = {"tinysr_version": self.tinysr_version, "model": dict(self.model),
                  "train": dataclasses.asdict(self.train), "data": self.data.to_dict(), "protocol": self.protocol,
                  "seed": self.seed}
        if self.init is not None:
            config["init"] = self.init
        if self.threads is not None:
            config["threads"] = self.threads
        return config if self.polish is None else config | {"polish": dict(self.polish)}

    @classmethod
    def from_dict(cls, config: dict[str, Any], *, source: str | os.PathLike) -> RunConfig:
        """The RunConfig of a config.json dict; a one-line TinySRError naming `source` and the bad field."""
        try:
            _check_fields("", config, cls)
            for section in ("model", "train", "data"):
                if not isinstance(config[section], dict):
                    raise TinySRError(f"{section}: expected an object, got {config[section]!r}")
            _check_fields("train", config["train"], TrainConfig)
            return cls(**{**config, "train": TrainConfig(**config["train"]),
                          "data": DataConfig.from_dict(config["data"])})
        except TinySRError as exc:
            raise TinySRError(f"{source}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise TinySRError(f"{source}: a field has the wrong type ({exc})") from None


def _check_fields(section: str, entries: dict[str, Any], kind: type) -> None:
    """Raise TinySRError naming the first unknown or missing (no default) field of `kind` in `entries`."""
    prefix = f"{section}." if section else ""
    known = {f.name: f for f in dataclasses.fields(kind)}
    for name in entries:
        if name not in known:
            raise TinySRError(f"unknown field {prefix}{name}")
    for name, field in known.items():
        if name not in entries and field.default is dataclasses.MISSING:
            raise TinySRError(f"missing field {prefix}{name}")
