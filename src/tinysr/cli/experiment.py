"""CLI wiring of `tinysr experiment list|run|report` and `tinysr report`. Only this layer sees argparse."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tinysr.cli.types import int_at_least, positive_int
from tinysr.errors import TinySRError


def _add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder holding run folders (searched recursively)")
    p.add_argument("--out", default=None, help="folder for tables and figures (default: RUNS_DIR/report)")
    p.add_argument("--device", default="cpu", help="device for the visual comparison's models")
    p.add_argument("--no-visual", action="store_true", help="skip the visual comparison figure")
    p.add_argument("--test-data", nargs="+", metavar="DIR",
                   help="test folders (e.g. Set5 Set14 BSD100 Urban100): measure every run's best weights on them "
                        "(standard protocol), beside bicubic and the published references; Pareto plots on the first")


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables (Markdown, CSV) and figures rebuilt from run folders")
    _add_report_args(p)


def add_experiment_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="the study's tables as experiments: list, run, report")
    esub = p.add_subparsers(dest="experiment_command", required=True, parser_class=type(p))
    lp = esub.add_parser("list", help="print the tables' rows")
    lp.add_argument("table", nargs="?", help="one table (default: all)")
    rp = esub.add_parser("run", help="run a table's rows: skip finished runs, resume unfinished ones")
    rp.add_argument("table", help="table1, table2, table3, table4 or tiny-pareto")
    rp.add_argument("--only", help="comma-separated row keys (table2: blocks, table4: filters, tiny-pareto: "
                                   "100..5k, edsr, 1k-x3, 1k-x4) or full names")
    rp.add_argument("--out", default="runs", help="RUNS_DIR; each row runs in RUNS_DIR/TABLE/ROW (default: runs)")
    rp.add_argument("--steps", type=positive_int, help="training steps (study: 300000)")
    rp.add_argument("--batch-size", type=positive_int, help="batch size (study: 1)")
    rp.add_argument("--eval-every", type=positive_int, help="validation interval in steps (study: 1000)")
    rp.add_argument("--learning-rate", type=float, help="Adam learning rate (study: 1e-4)")
    rp.add_argument("--schedule", choices=("step", "cosine"), help="learning-rate schedule (study: step)")
    rp.add_argument("--polish-steps", type=int_at_least(0),
                    help="tinysr polish steps after training, into ROW-polished (0: none; tiny-pareto's <=1k rows: 8)")
    rp.add_argument("--data", nargs="+", metavar="DIR", help="training HR folder(s) instead of the table's")
    rp.add_argument("--val-data", metavar="DIR", help="validation HR folder instead of the table's")
    rp.add_argument("--jobs", type=positive_int, default=1, help="runs at once, as subprocesses (default 1)")
    rp.add_argument("--threads", type=positive_int, help="torch threads per run (default: cores / jobs)")
    rp.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    rp.add_argument("--devices", help="CUDA indices, e.g. 0,1,2,3: one run per GPU at a time (overrides --jobs)")
    rp.add_argument("--dry-run", action="store_true", help="print the queue, run nothing")
    _add_report_args(esub.add_parser("report", help="the same as `tinysr report`"))


def run_report(args: argparse.Namespace) -> int:
    from tinysr.experiments.report import build_report

    out = Path(args.out) if args.out else Path(args.runs_dir) / "report"
    files = build_report(args.runs_dir, out, device=args.device, visual=not args.no_visual, test_data=args.test_data)
    print(f"wrote {len(files)} files to {out}: {', '.join(f.name for f in files)}")
    return 0


def _shape(config) -> str:
    """blocks/filters of an EDSR, layers x filters (Y or RGB) of a tiny net."""
    if config.family == "tiny":
        return f"{config.n_layers}Lx{config.n_feats} {config.channels}"
    return f"{config.n_blocks}/{config.n_feats}"


def _list(table: str | None) -> int:
    from tinysr.experiments.presets import TABLES, get_table
    from tinysr.experiments.results import count_config_params

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
    from tinysr.experiments import runner
    from tinysr.experiments.training import check_data, check_polish_stage

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


def run_experiment(args: argparse.Namespace) -> int:
    if args.experiment_command == "list":
        return _list(args.table)
    if args.experiment_command == "run":
        return _run(args)
    return run_report(args)
