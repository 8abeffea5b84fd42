"""`tinysr experiment list|run|report`: the study's tables as presets, run one folder per row."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tinysr.cli import report
from tinysr.errors import TinySRError
from tinysr.experiments import runner
from tinysr.experiments.presets import TABLES, get_table
from tinysr.experiments.results import count_config_params
from tinysr.experiments.training import check_data, check_polish_stage


def _shape(config) -> str:
    """blocks/filters of an EDSR, layers x filters (Y or RGB) of a tiny net."""
    if config.family == "tiny":
        return f"{config.n_layers}Lx{config.n_feats} {config.channels}"
    return f"{config.n_blocks}/{config.n_feats}"


def _list(table: str | None) -> int:
    for name in [table] if table else list(TABLES):
        print(f"{name}:")
        for s in get_table(name):
            ref = "" if s.reference.psnr is None else f"  study {s.reference.psnr:.2f} dB (bicubic " \
                                                       f"{s.reference.bicubic_psnr:.2f})"
            print(f"  {s.key:<12} {s.name:<24} {_shape(s.model):>12} x{s.model.scale} "
                  f"{count_config_params(s.model):>12,} params  {s.data.name} HR {s.data.hr_size} -> "
                  f"LR {s.data.lr_size}{ref}")
    return 0


def _run(args: argparse.Namespace) -> int:
    only = args.only.split(",") if args.only else None
    devices = runner.parse_devices(args.devices) if args.devices else None
    overrides = runner.Overrides(steps=args.steps, batch_size=args.batch_size, eval_every=args.eval_every,
                                 learning_rate=args.learning_rate, schedule=args.schedule,
                                 polish_steps=args.polish_steps,
                                 data=tuple(args.data) if args.data else None, val_data=args.val_data)
    runs_dir = Path(args.out)
    jobs, skipped = runner.make_queue(runner.plan(args.table, only=only, overrides=overrides), runs_dir)
    for name, why in skipped:
        print(f"skip {name}: {why}")
    for job in jobs:
        print(f"{job.verb} {job.spec.name} -> {job.target}")
    if args.dry_run or not jobs:
        return 0
    for job in jobs:  # fail fast, before hours of training: data not prepared, a polish stage that would refuse
        check_data(job.spec.data)
        check_polish_stage(job.spec)
    n_jobs = min(len(devices) if devices else args.jobs, len(jobs))
    threads = args.threads or max(1, (os.cpu_count() or 1) // n_jobs)
    if devices:
        failed = runner.run_parallel(
            jobs, lambda j: runner.job_command(j, runs_dir=runs_dir, overrides=overrides, threads=threads,
                                               device="cuda"), n_jobs=n_jobs, threads=threads, devices=devices)
    elif n_jobs == 1:
        failed = runner.run_sequential(jobs, lambda j: runner.execute_job(j, device=args.device, threads=threads))
    else:
        failed = runner.run_parallel(
            jobs, lambda j: runner.job_command(j, runs_dir=runs_dir, overrides=overrides, threads=threads,
                                               device=args.device), n_jobs=n_jobs, threads=threads)
    if failed:
        raise TinySRError(f"{len(failed)} of {len(jobs)} runs failed: {', '.join(failed)}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.experiment_command == "list":
        return _list(args.table)
    if args.experiment_command == "run":
        return _run(args)
    return report.run(args)
