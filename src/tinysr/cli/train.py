"""`tinysr train`: open (or resume) a run folder, load the data, call `tinysr.train.loop.train`.

Every option defaults to None so that a resume can tell the options given on the
command line (checked against the run's config.json) from those it inherits from the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from tinysr.errors import TinySRError
from tinysr.infer.load import load_network
from tinysr.models import (
    build_config,
    config_from_dict,
    config_to_dict,
    model_from_config_dict,
)
from tinysr.train import runs
from tinysr.train.config import TrainConfig
from tinysr.train.cuda import FastPath
from tinysr.train.distributed import (
    barrier,
    context_from_env,
    init_distributed,
    local_batch_size,
    shutdown,
)
from tinysr.train.loop import select_device, train
from tinysr.train.start import load_data

#: CLI option -> TrainConfig field.
TRAIN_OPTIONS = {
    "steps": "steps", "batch_size": "batch_size", "patch": "patch", "learning_rate": "learning_rate",
    "schedule": "schedule", "lr_step": "lr_step", "eval_every": "eval_every", "val_limit": "val_limit",
    "protocol": "protocol", "seed": "seed", "loss": "loss", "final_loss": "final_loss",
    "final_fraction": "final_fraction", "revive_every": "revive_every",
}
#: CLI option -> model config field.
MODEL_OPTIONS = {"blocks": "n_blocks", "feats": "n_feats", "scale": "scale", "res_scale": "res_scale",
                 "layers": "n_layers", "expand": "expand"}
#: The speed flags, named as `tinysr.train.cuda.FastPath` fields; not part of config.json (they change speed,
#: and numerics within bf16 rounding, not the recipe), so a run may resume with other settings or on another device.
FAST_OPTIONS = ("channels_last", "bf16", "compile", "cuda_graphs", "gpu_data")


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, Any]:
    return {field: getattr(args, opt) for opt, field in options.items() if getattr(args, opt) is not None}


def _resolved(paths: list[str]) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


def _validation(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """(val folder, val split) from --val-data / --val-split (argparse keeps them mutually exclusive)."""
    return (None, args.val_split) if args.val_split is not None else (str(Path(args.val_data).resolve()), None)


def plan_run(args: argparse.Namespace) -> tuple[Path, dict[str, Any], bool]:
    """(run folder, config.json dict, resume?) from the options, inheriting a resumed run's config."""
    if args.resume and args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise TinySRError("--out and --resume name different folders; --resume continues RUN in place")
    model_given, train_given = _given(args, MODEL_OPTIONS), _given(args, TRAIN_OPTIONS)
    if args.resume:
        stored = runs.read_config(Path(args.resume))
        base = stored["model"]
        model = (build_config(args.model, **model_given) if args.model else
                 dataclasses.replace(config_from_dict(base), **model_given))
        train = TrainConfig(**{**stored["train"], **train_given})
        data = stored["data"]
        train_data = _resolved(args.train_data) if args.train_data else data["train"]
        given = args.val_data is not None or args.val_split is not None
        val_data, val_split = _validation(args) if given else (data["val"], data.get("val_split"))
        stored_split_seed = None if given else data.get("split_seed")  # it goes with the stored validation only
        split_seed = args.split_seed if args.split_seed is not None else stored_split_seed
        degradation = args.degradation or data["degradation"]
        init = stored.get("init")
    else:
        missing = [o for o, v in (("--out", args.out), ("--train-data", args.train_data),
                                  ("--val-data or --val-split", args.val_data or args.val_split)) if not v]
        if missing:
            raise TinySRError(f"a new run needs {', '.join(missing)} (or --resume RUN)")
        init = str(args.init) if args.init else None
        model = (build_config(args.model or "edsr", **model_given) if args.model or not init else
                 dataclasses.replace(init_network(init, scale=args.scale).config, **model_given))
        train = TrainConfig(**train_given)
        train_data, (val_data, val_split) = _resolved(args.train_data), _validation(args)
        split_seed = args.split_seed
        degradation = args.degradation or "bicubic"
    config = runs.run_config(model=config_to_dict(model), train=dataclasses.asdict(train), train_data=train_data,
                             val_data=val_data, scale=model.scale, degradation=degradation,
                             protocol=train.protocol, seed=train.seed, val_split=val_split, split_seed=split_seed)
    if init:
        config["init"] = init  # the weights a new run started from (a resume keeps it and loads last.pt instead)
    return Path(args.resume or args.out), config, bool(args.resume)


def init_network(spec: str, *, scale: int | None) -> torch.nn.Module:
    """The deployed network of --init WEIGHTS (a weights file, run folder or bundled model name)."""
    return load_network(spec, scale=scale)[0]


def fast_path(args: argparse.Namespace, device: Any, *, world_size: int) -> Any:
    """`FastPath.default_for(device)` with the speed flags given on the command line."""
    given = {f: getattr(args, f) for f in FAST_OPTIONS if getattr(args, f) is not None}
    fast = dataclasses.replace(FastPath.default_for(device, world_size=world_size), **given)
    fast.check(device, world_size=world_size)
    return fast


def run(args: argparse.Namespace) -> int:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return _train_command(args)
    finally:  # global torch settings go back as they were (main() may be called in-process)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train_command(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = plan_run(args)
    local_batch_size(plan[1]["train"]["batch_size"], context_from_env().world_size)  # before joining the group
    ctx, device = init_distributed(select_device(args.device))  # one process unless started by torchrun
    try:
        return _train_rank(args, plan, ctx, device)
    finally:
        shutdown(ctx)


def _train_rank(args: argparse.Namespace, plan: tuple[Path, dict[str, Any], bool], ctx: Any, device: Any) -> int:
    """This process's part: rank 0 (or the only process) builds the data cache and opens the run folder first."""
    run_dir, config, resume = plan
    train_config = TrainConfig(**config["train"])
    fast = fast_path(args, device, world_size=ctx.world_size)
    progress = not args.no_progress and ctx.is_main
    if not ctx.is_main:
        barrier(ctx)  # wait for rank 0's cache and run folder
    train_pairs, val_pairs = load_data(config, progress=progress)  # before touching the run folder
    if ctx.is_main:
        if resume:
            runs.resume_run(run_dir, config, force=args.force)
        else:
            runs.open_run(run_dir, config, force=args.force)
        barrier(ctx)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)  # free on CPU; on CUDA it would need CUBLAS_WORKSPACE_CONFIG
    torch.manual_seed(train_config.seed)
    model = model_from_config_dict(config["model"])
    if config.get("init") and not resume:
        model.load_state_dict(init_network(config["init"], scale=model.config.scale).state_dict())
    try:
        result = train(model, train_pairs, val_pairs, config=train_config, run_dir=run_dir, device=device,
                       resume=resume, progress=progress, fast=fast, ctx=ctx)
    except KeyboardInterrupt:
        print(f"tinysr: interrupted; {run_dir}/last.pt saved, continue with --resume {run_dir}", file=sys.stderr)
        return 130
    if ctx.is_main:
        print(f"{run_dir}: step {result.step}, best val PSNR {result.best_psnr:.3f} dB ({train_config.protocol}) "
              f"at step {result.best_step}; weights {run_dir / runs.RUN_BEST}")
    return 0
