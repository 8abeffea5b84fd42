"""Starting a run: from its config.json dict to the data it trains and validates on, and the sampler that crops it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tinysr.data.cache import PairedImages, concat, load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.gpu_sampler import DevicePatchSampler
from tinysr.data.sampler import PatchSampler
from tinysr.data.split import split_pairs
from tinysr.train.distributed import ShardedBatches, local_batch_size


def load_data(config: dict[str, Any], *, progress: bool) -> tuple[PairedImages, PairedImages]:
    """(train pairs, val pairs) of a run config: image folders -> decoded, degraded, cached pairs.

    With data.val_split N, the val pairs are N images held out of the (cached, whole) training set and the train
    pairs the rest (`tinysr.data.split`); data.val_names is filled in (the caller writes config.json after this).
    """
    data = config["data"]
    train_set = concat(*(image_folder(d) for d in data["train"]))
    opts = {"scale": data["scale"], "degradation": data["degradation"], "progress": progress}
    train_pairs = load_pairs(train_set, **opts)
    if data.get("val_split") is None:
        return train_pairs, load_pairs(image_folder(data["val"]), **opts)
    train_pairs, val_pairs = split_pairs(train_pairs, data["val_split"], seed=data.get("split_seed", config["seed"]))
    data["val_names"] = list(val_pairs.names)
    return train_pairs, val_pairs


def training_sampler(pairs, *, patch: int, batch_size: int, augment: bool, seed: int, gpu_data: bool,
                     device: torch.device, ctx, saved_state: dict | None = None):
    """The sampler of a training run: this one on `device` with `gpu_data`, else the CPU `PatchSampler` drawing
    the global batch (sliced per rank by `ShardedBatches` under DDP). A resume keeps the kind of sampler that wrote
    `saved_state` (its state fits no other), whatever `gpu_data` says. `pairs`: a `PairedImages`."""
    local_batch_size(batch_size, ctx.world_size)
    if gpu_data if saved_state is None else "bit_generator" not in saved_state:
        return DevicePatchSampler(pairs.hr, pairs.lr, scale=pairs.scale, patch=patch, batch_size=batch_size,
                                  augment=augment, seed=seed, device=device, rank=ctx.rank, world_size=ctx.world_size)
    sampler = PatchSampler(pairs, scale=pairs.scale, patch=patch, batch_size=batch_size, augment=augment,
                           generator=np.random.default_rng(seed))
    return ShardedBatches(sampler, ctx) if ctx.world_size > 1 else sampler
