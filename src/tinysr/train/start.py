"""Starting a run: one `start_run` for every entry point (`tinysr train`, the experiment runner, the demo, polish),
so that a run is a function of its `RunConfig` alone, whichever command starts it and whatever ran before it in
the process; and the sampler that crops its data.

Steps of `start_run`:
1. torch's process-wide settings: CPU threads (given, else the run's recorded count; the count used is recorded in
   config.json) and deterministic algorithms on CPU, restored on exit;
2. the data (`load_data`): decoded, degraded and cached once; under torchrun rank 0 goes first (it builds the cache);
3. the run folder opened (new) or checked and resumed (`tinysr.train.runs`), by rank 0 only;
4. torch's global RNG seeded with train.seed, then the model built from the config (its initial weights), once the
   config is known to build a model of a sane size (`runs.checked_model_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinysr.data.cache import PairedImages, concat, load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.gpu_sampler import DevicePatchSampler
from tinysr.data.sampler import PatchSampler
from tinysr.data.split import split_pairs
from tinysr.errors import TinySRError
from tinysr.models import model_from_config_dict
from tinysr.train import runs
from tinysr.train.config import DataConfig, RunConfig
from tinysr.train.distributed import (
    DistContext,
    ShardedBatches,
    barrier,
    local_batch_size,
)


def _image_set(folders: tuple[str, ...], data: DataConfig):  # -> ImageSet
    """The folders as one ImageSet, HR shrunk by data.hr_downscale (Table I)."""
    return dataclasses.replace(concat(*(image_folder(f) for f in folders)), hr_downscale=data.hr_downscale)


def load_data(config: RunConfig, *, progress: bool, max_pixels: int | None = None
              ) -> tuple[PairedImages, PairedImages, RunConfig]:
    """(train pairs, val pairs, config with data.val_names) of a run: image folders -> decoded, degraded, cached pairs.

    With data.val_split N, the val pairs are N images held out of the (cached, whole) training set and the train
    pairs the rest (`tinysr.data.split`, seeded by data.split_seed, else by the run's seed); the returned config
    records their names. A config that recorded other names is refused: it would validate on training images.
    """
    data = config.data
    opts = {"scale": data.scale, "degradation": data.degradation, "progress": progress, "max_pixels": max_pixels}
    train_pairs = load_pairs(_image_set(data.train, data), **opts)
    if data.val_split is None:
        return train_pairs, load_pairs(_image_set((data.val,), data), **opts), config
    seed = config.seed if data.split_seed is None else data.split_seed
    train_pairs, val_pairs = split_pairs(train_pairs, data.val_split, seed=seed)
    names = tuple(val_pairs.names)
    if data.val_names is not None and data.val_names != names:
        raise TinySRError(f"the training folders now give other held-out images than the run recorded "
                          f"({', '.join(data.val_names)}); it would validate on images it trains on")
    return train_pairs, val_pairs, dataclasses.replace(config, data=dataclasses.replace(data, val_names=names))


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


@dataclass(frozen=True)
class StartedRun:
    """What `start_run` hands the loop: the config as recorded (val_names filled), the opened folder, the data and
    the model (on the CPU; the loop moves it)."""

    config: RunConfig
    run_dir: Path
    train_pairs: PairedImages
    val_pairs: PairedImages
    model: nn.Module


@contextmanager
def torch_settings(*, threads: int | None, device: torch.device) -> Iterator[None]:
    """Step 1: `threads` CPU threads (None: as they are) and, on CPU, deterministic algorithms (free there; on CUDA
    they would need CUBLAS_WORKSPACE_CONFIG); both restored on exit (commands run in-process in tests)."""
    saved_threads, saved_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        if threads:
            torch.set_num_threads(threads)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_deterministic)


def _open_folder(config: RunConfig, run_dir: Path, *, resume: bool, force: bool) -> None:
    """Step 3; a polished run's status.json counts polish steps (`tinysr.train.polish_run`)."""
    if resume:
        runs.resume_run(run_dir, config, force=force)
    else:
        runs.open_run(run_dir, config, force=force, steps=config.polish["steps"] if config.polish else None)


@contextmanager
def start_run(config: RunConfig, run_dir: str | Path, *, resume: bool, force: bool, threads: int | None = None,
              device: str | torch.device = "cpu", progress: bool = True, ctx: DistContext = DistContext(),
              model: nn.Module | None = None, pairs: tuple[PairedImages, PairedImages] | None = None,
              max_pixels: int | None = None) -> Iterator[StartedRun]:
    """Start (or resume) the run of `config` in `run_dir` (the module's steps 1-4); train inside the block.

    `threads`: torch CPU threads (None: config.threads, the run's recorded count; None there too: as they are);
    the count used is recorded in the config the folder gets.
    `model`: the net to train instead of a fresh one from config.model (polish: the source run's weights).
    `pairs`: (train, val) pairs made by the caller instead of `load_data` (the demo's embedded photos).
    `ctx` (`tinysr.train.distributed`): under torchrun, rank 0 loads the data and opens the folder before the others.
    Every refusal (a TinySRError) comes before the folder is touched.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    with torch_settings(threads=threads or config.threads, device=device):
        config = dataclasses.replace(config, threads=torch.get_num_threads())  # step 1's count, for config.json
        if model is None:
            runs.checked_model_config(config.model, source="the run's model config")  # before any data work
        if not ctx.is_main:
            barrier(ctx)  # wait for rank 0's cache and run folder
        if pairs is None:
            train_pairs, val_pairs, config = load_data(config, progress=progress and ctx.is_main,
                                                       max_pixels=max_pixels)
        else:
            train_pairs, val_pairs = pairs
        if ctx.is_main:
            _open_folder(config, run_dir, resume=resume, force=force)
            barrier(ctx)
        torch.manual_seed(config.train.seed)
        if model is None:
            model = model_from_config_dict(config.model)
        yield StartedRun(config=config, run_dir=run_dir, train_pairs=train_pairs, val_pairs=val_pairs, model=model)
