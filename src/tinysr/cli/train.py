"""`tinysr train`: parse, open (or resume) a run folder, load the data, call `tinysr.train.loop.train`.

Only this layer sees argparse. Every option defaults to None so that a resume can tell the options given on the
command line (checked against the run's config.json) from those it inherits from the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tinysr.cli.types import positive_float, positive_int
from tinysr.errors import TinySRError
from tinysr.train.losses import LOSSES

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


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network into a run folder (or --resume one)",
                       description="Defaults are the study's recipe: L1, Adam, learning rate 1e-4 halved every "
                                   "200k steps, 300k steps, batch 1, LR patch 48, validation every 1k steps.")
    m = p.add_argument_group("model (a preset or family name, and/or its fields)")
    m.add_argument("--model", help="a preset (e.g. edsr-tiny, edsr-baseline) or family (edsr); default edsr")
    m.add_argument("--blocks", type=int, help="residual blocks (n_blocks)")
    m.add_argument("--feats", type=positive_int, help="filters per conv (n_feats)")
    m.add_argument("--scale", type=int, choices=(2, 3, 4))
    m.add_argument("--res-scale", type=positive_float, help="residual scaling")
    m.add_argument("--layers", type=positive_int, help="tiny nets: convs at low resolution (n_layers)")
    m.add_argument("--expand", type=positive_int, help="tiny nets: re-parameterisation factor while training "
                   "(1: plain convs)")
    d = p.add_argument_group("data and run folder")
    d.add_argument("--train-data", nargs="+", metavar="DIR", help="image folder(s), concatenated")
    v = d.add_mutually_exclusive_group()
    v.add_argument("--val-data", metavar="DIR", help="image folder for validation (whole images)")
    v.add_argument("--val-split", type=positive_int, metavar="N",
                   help="validate on N images held out of --train-data (seeded by --split-seed, else --seed; "
                   "names in config.json)")
    d.add_argument("--split-seed", type=int, metavar="S",
                   help="seed of the --val-split draw, so that runs of different --seed hold out the same images")
    d.add_argument("--degradation", help="how LR is made from HR (default bicubic)")
    d.add_argument("--out", metavar="RUN", help="the new run folder")
    d.add_argument("--resume", metavar="RUN", help="continue this run (options given must agree with it)")
    d.add_argument("--force", action="store_true", help="overwrite --out, or resume despite disagreeing options")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=positive_int)
    t.add_argument("--batch-size", type=positive_int)
    t.add_argument("--patch", type=positive_int, help="LR patch side")
    t.add_argument("--learning-rate", type=positive_float)
    t.add_argument("--schedule", choices=("step", "cosine"))
    t.add_argument("--loss", choices=tuple(LOSSES),
                   help="l1: L1 on RGB (default, the study's); l1-y: L1 on luma; mse-y: squared error on luma")
    t.add_argument("--final-loss", choices=tuple(LOSSES), help="the loss of the last --final-fraction of the steps")
    t.add_argument("--final-fraction", type=float, help="share of the steps, at the end, trained with --final-loss")
    t.add_argument("--revive-every", type=positive_int,
                   help="tiny ReLU nets: re-initialise dead hidden units every N steps (tinysr.train.revive)")
    t.add_argument("--lr-step", type=positive_int, help="halve the learning rate every N steps (step schedule)")
    t.add_argument("--eval-every", type=positive_int)
    t.add_argument("--val-limit", type=positive_int, help="validate on the first N images only")
    t.add_argument("--protocol", choices=("study", "standard"), help="validation protocol (default study)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    f = p.add_argument_group("speed (tinysr.train.cuda; default: all on for CUDA except --compile, all off on CPU)")
    f.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC model and input")
    f.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast, fp32 master weights")
    f.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    f.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction,
                   help="one CUDA graph per step (single process only)")
    f.add_argument("--gpu-data", action=argparse.BooleanOptionalAction, help="crop and augment on the GPU")


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, Any]:
    return {field: getattr(args, opt) for opt, field in options.items() if getattr(args, opt) is not None}


def _resolved(paths: list[str]) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


def _validation(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """(val folder, val split) from --val-data / --val-split (argparse keeps them mutually exclusive)."""
    return (None, args.val_split) if args.val_split is not None else (str(Path(args.val_data).resolve()), None)


def plan_run(args: argparse.Namespace) -> tuple[Path, dict[str, Any], bool]:
    """(run folder, config.json dict, resume?) from the options, inheriting a resumed run's config."""
    from tinysr.train import runs
    from tinysr.models import build_config, config_from_dict, config_to_dict
    from tinysr.train.loop import TrainConfig

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
    else:
        missing = [o for o, v in (("--out", args.out), ("--train-data", args.train_data),
                                  ("--val-data or --val-split", args.val_data or args.val_split)) if not v]
        if missing:
            raise TinySRError(f"a new run needs {', '.join(missing)} (or --resume RUN)")
        model = build_config(args.model or "edsr", **model_given)
        train = TrainConfig(**train_given)
        train_data, (val_data, val_split) = _resolved(args.train_data), _validation(args)
        split_seed = args.split_seed
        degradation = args.degradation or "bicubic"
    config = runs.run_config(model=config_to_dict(model), train=dataclasses.asdict(train), train_data=train_data,
                             val_data=val_data, scale=model.scale, degradation=degradation,
                             protocol=train.protocol, seed=train.seed, val_split=val_split, split_seed=split_seed)
    return Path(args.resume or args.out), config, bool(args.resume)


def load_data(config: dict[str, Any], *, progress: bool) -> tuple[Any, Any]:
    """(train pairs, val pairs) of a run config: image folders -> decoded, degraded, cached pairs.

    With data.val_split N, the val pairs are N images held out of the (cached, whole) training set and the train
    pairs the rest (`tinysr.data.split`); data.val_names is filled in (the caller writes config.json after this).
    """
    from tinysr.data.cache import concat, load_pairs
    from tinysr.data.folder import image_folder
    from tinysr.data.split import split_pairs

    data = config["data"]
    train_set = concat(*(image_folder(d) for d in data["train"]))
    opts = {"scale": data["scale"], "degradation": data["degradation"], "progress": progress}
    train_pairs = load_pairs(train_set, **opts)
    if data.get("val_split") is None:
        return train_pairs, load_pairs(image_folder(data["val"]), **opts)
    train_pairs, val_pairs = split_pairs(train_pairs, data["val_split"], seed=data.get("split_seed", config["seed"]))
    data["val_names"] = list(val_pairs.names)
    return train_pairs, val_pairs


def fast_path(args: argparse.Namespace, device: Any, *, world_size: int) -> Any:
    """`FastPath.default_for(device)` with the speed flags given on the command line."""
    from tinysr.train.cuda import FastPath

    given = {f: getattr(args, f) for f in FAST_OPTIONS if getattr(args, f) is not None}
    fast = dataclasses.replace(FastPath.default_for(device, world_size=world_size), **given)
    fast.check(device, world_size=world_size)
    return fast


def run_train(args: argparse.Namespace) -> int:
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return _train_command(args)
    finally:  # global torch settings go back as they were (main() may be called in-process)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train_command(args: argparse.Namespace) -> int:
    import torch

    from tinysr.train.distributed import context_from_env, init_distributed, local_batch_size, shutdown
    from tinysr.train.loop import select_device

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
    import torch

    from tinysr.train import runs
    from tinysr.train.distributed import barrier
    from tinysr.models import model_from_config_dict
    from tinysr.train.loop import TrainConfig, train

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
