"""`tinysr train`: the options as a `RunConfig`, then `tinysr.train.start.start_run` and `tinysr.train.loop.train`.

Every option defaults to None so that a resume can tell the options given on the
command line (checked against the run's config.json) from those it inherits from the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tinysr.errors import TinySRError
from tinysr.api import load_model
from tinysr.models import build_config, config_from_dict, config_to_dict
from tinysr.train import runs
from tinysr.train.config import DataConfig, RunConfig, TrainConfig
from tinysr.train.cuda import FastPath
from tinysr.train.distributed import (
    context_from_env,
    init_distributed,
    local_batch_size,
    shutdown,
)
from tinysr.train.loop import bicubic_baseline, select_device, train
from tinysr.train.start import start_run

#: The TrainConfig fields, each set by the option of the same name (argparse dest == field name) where the grammar
#: has one (`tinysr.cli.parser`); the Adam constants and `augment` have none and keep their defaults.
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
#: CLI option -> model config field.
MODEL_OPTIONS = {"blocks": "n_blocks", "feats": "n_feats", "scale": "scale", "res_scale": "res_scale",
                 "layers": "n_layers", "expand": "expand"}
#: The speed flags, named as `tinysr.train.cuda.FastPath` fields; not part of config.json (they change speed,
#: and numerics within bf16 rounding, not the recipe), so a run may resume with other settings or on another device.
FAST_OPTIONS = ("channels_last", "bf16", "compile", "cuda_graphs", "gpu_data")


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, Any]:
    return {field: getattr(args, opt) for opt, field in options.items() if getattr(args, opt, None) is not None}


def _resolved(paths: list[str]) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


def _validation(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """(val folder, val split) from --val-data / --val-split (argparse keeps them mutually exclusive)."""
    return (None, args.val_split) if args.val_split is not None else (str(Path(args.val_data).resolve()), None)


def _stored_data(args: argparse.Namespace, stored: DataConfig) -> DataConfig:
    """A resumed run's data, with the data options given on the command line replacing the stored ones."""
    data = stored if not args.train_data else dataclasses.replace(stored, train=_resolved(args.train_data))
    if args.val_data is not None or args.val_split is not None:  # the stored draw and its seed go together
        (val, val_split), split_seed = _validation(args), args.split_seed
        data = dataclasses.replace(data, val=val, val_split=val_split, val_names=None, split_seed=split_seed)
    elif args.split_seed is not None:
        data = dataclasses.replace(data, split_seed=args.split_seed, val_names=None)
    return dataclasses.replace(data, degradation=args.degradation or data.degradation)


def plan_run(args: argparse.Namespace) -> tuple[Path, RunConfig, bool]:
    """(run folder, RunConfig, resume?) from the options, inheriting a resumed run's config."""
    if args.resume and args.out and Path(args.resume).resolve() != Path(args.out).resolve():
        raise TinySRError("--out and --resume name different folders; --resume continues RUN in place")
    model_given, train_given = _given(args, MODEL_OPTIONS), _given(args, {f: f for f in TRAIN_FIELDS})
    if args.resume:
        stored = runs.read_run_config(Path(args.resume))
        model = (build_config(args.model, **model_given) if args.model else
                 dataclasses.replace(config_from_dict(stored.model), **model_given))
        train = dataclasses.replace(stored.train, **train_given)
        data = dataclasses.replace(_stored_data(args, stored.data), scale=model.scale)
        init, threads = stored.init, args.threads or stored.threads  # the run's threads, unless given
    else:
        missing = [o for o, v in (("--out", args.out), ("--train-data", args.train_data),
                                  ("--val-data or --val-split", args.val_data or args.val_split)) if not v]
        if missing:
            raise TinySRError(f"a new run needs {', '.join(missing)} (or --resume RUN)")
        init, threads = (str(args.init) if args.init else None), args.threads
        model = (build_config(args.model or "edsr", **model_given) if args.model or not init else
                 dataclasses.replace(load_model(init, scale=args.scale).config, **model_given))
        train = TrainConfig(**train_given)
        (val, val_split) = _validation(args)
        data = DataConfig(train=tuple(_resolved(args.train_data)), val=val, val_split=val_split,
                          split_seed=args.split_seed, scale=model.scale, degradation=args.degradation or "bicubic")
    config = RunConfig(model=config_to_dict(model), train=train, data=data, protocol=train.protocol, seed=train.seed,
                       init=init, threads=threads)
    return Path(args.resume or args.out), config, bool(args.resume)


def fast_path(args: argparse.Namespace, device: Any, *, world_size: int) -> Any:
    """`FastPath.default_for(device)` with the speed flags given on the command line."""
    given = {f: getattr(args, f) for f in FAST_OPTIONS if getattr(args, f) is not None}
    fast = dataclasses.replace(FastPath.default_for(device, world_size=world_size), **given)
    fast.check(device, world_size=world_size)
    return fast


def run(args: argparse.Namespace) -> int:
    run_dir, config, resume = plan_run(args)
    local_batch_size(config.train.batch_size, context_from_env().world_size)  # before joining the group
    ctx, device = init_distributed(select_device(args.device))  # one process unless started by torchrun
    try:
        return _train_rank(args, run_dir, config, resume=resume, ctx=ctx, device=device)
    finally:
        shutdown(ctx)


def _train_rank(args: argparse.Namespace, run_dir: Path, config: RunConfig, *, resume: bool, ctx: Any,
                device: Any) -> int:
    """This process's part of the run (`tinysr.train.start.start_run`: rank 0 builds the cache and opens the folder)."""
    fast = fast_path(args, device, world_size=ctx.world_size)
    progress = not args.no_progress and ctx.is_main
    try:
        start_from = (load_model(config.init, scale=config.data.scale).to_torch() if config.init and not resume
                      else None)
        with start_run(config, run_dir, resume=resume, force=args.force, threads=args.threads, device=device,
                       progress=progress, ctx=ctx, model=start_from, max_pixels=args.max_pixels) as started:
            result = train(started.model, started.train_pairs, started.val_pairs, config=config.train,
                           run_dir=run_dir, device=device, resume=resume, progress=progress, fast=fast, ctx=ctx)
    except KeyboardInterrupt:
        print(f"tinysr: interrupted; {run_dir}/last.pt saved, continue with --resume {run_dir}", file=sys.stderr)
        return 130
    if ctx.is_main:
        print(f"{run_dir}: step {result.step}, best val PSNR {result.best_psnr:.3f} dB ({config.train.protocol}) "
              f"at step {result.best_step}; weights {run_dir / runs.RUN_BEST}")
        warn_if_below_bicubic(result.best_psnr, started.val_pairs, config=config, run_dir=run_dir)
    return 0


#: A run "beats bicubic" when its best validation PSNR is at least this much higher (dB): a tiny net starts AT
#: bicubic (its anchor), and equal to the second decimal is no gain.
BEATS_BICUBIC_BY = 0.01


def warn_if_below_bicubic(best_psnr: float, val_pairs: Any, *, config: RunConfig, run_dir: Path) -> None:
    """One warning line when the run ends below MATLAB bicubic on its own validation images: its weights would
    make images worse than the simplest upscaler."""
    baseline = bicubic_baseline(val_pairs, protocol=config.train.protocol, limit=config.train.val_limit)
    if best_psnr < baseline + BEATS_BICUBIC_BY:
        print(f"tinysr: warning: {run_dir}: best val PSNR {best_psnr:.2f} dB does not beat bicubic's {baseline:.2f} "
              "dB on the same images; train longer (see the README's quick recipe) before using these weights",
              file=sys.stderr)
