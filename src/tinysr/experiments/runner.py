"""The sweep runner: a queue of run specs, one function that executes one, and a loop that runs the queue.

Steps of `tinysr experiment run TABLE`:
1. `plan`: the table's rows (`--only`), with the command line's overrides applied (steps, batch size, eval
   interval, data folders);
2. `make_queue`: one `Job` per row whose run folder RUNS_DIR/TABLE/ROW is not finished at the requested steps;
   a finished run is skipped, an unfinished one (interrupted, killed, or finished at fewer steps) is resumed;
   a row whose recipe has a polish stage is done when ROW-polished is finished too;
3. `run_queue`: the jobs one after another in this process (`execute_job` -> `tinysr.train.loop.train`), or `jobs` at
   a time as subprocesses (`job_command`: `python -m tinysr experiment run TABLE --only ROW ...`), each with
   cores / jobs threads and its output in RUNS_DIR/TABLE/ROW.log.
The seam for more devices: `run_queue` takes the executor and the command builder as arguments, and a job
carries everything it needs, so a scheduler that assigns devices only has to pass a `device` per job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tinysr.errors import TinySRError
from tinysr.experiments.presets import Reference, RunSpec, select_rows
from tinysr.experiments.training import polish_spec, polished_dir, train_spec


@dataclass(frozen=True)
class Overrides:
    """Command-line changes to every row's spec; None keeps the study's value."""

    steps: int | None = None
    batch_size: int | None = None
    eval_every: int | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    polish_steps: int | None = None  # 0: no polish stage
    data: tuple[str, ...] | None = None  # training HR folders
    val_data: str | None = None  # validation HR folder

    def apply(self, spec: RunSpec) -> RunSpec:
        recipe = replace(spec.recipe, **{k: v for k, v in (("steps", self.steps), ("batch_size", self.batch_size),
                                                           ("eval_every", self.eval_every), ("learning_rate", self.learning_rate),
                                                           ("schedule", self.schedule),
                                                           ("polish_steps", self.polish_steps)) if v is not None})
        data, reference = spec.data, spec.reference
        if self.data is not None:
            data = replace(data, name="custom", train=tuple(self.data), hr_size="n/a", lr_size="n/a", prepare="")
        if self.val_data is not None:
            data = replace(data, val=self.val_data, val_split=None)
        if data != spec.data:  # the study's PSNRs were measured on its data: no longer comparable
            reference = Reference(params=spec.reference.params)
        return replace(spec, recipe=recipe, data=data, reference=reference)

    def to_argv(self) -> list[str]:
        """The same overrides as `tinysr experiment run` options (for subprocess jobs)."""
        argv: list[str] = []
        for flag, value in (("--steps", self.steps), ("--batch-size", self.batch_size),
                            ("--eval-every", self.eval_every), ("--learning-rate", self.learning_rate),
                            ("--schedule", self.schedule), ("--polish-steps", self.polish_steps),
                            ("--val-data", self.val_data)):
            if value is not None:
                argv += [flag, str(value)]
        if self.data is not None:
            argv += ["--data", *self.data]
        return argv


def plan(table: str, *, only: list[str] | None = None, overrides: Overrides = Overrides()) -> list[RunSpec]:
    """The specs to run: `table`'s rows picked by `only`, with `overrides` applied."""
    return [overrides.apply(spec) for spec in select_rows(table, only)]


@dataclass(frozen=True)
class Job:
    """One spec to execute in `run_dir`; `resume` continues the folder's last.pt; `polish_only`: the training is
    done and only the recipe's polish stage is left."""

    spec: RunSpec
    run_dir: Path
    resume: bool
    polish_only: bool = False

    @property
    def verb(self) -> str:
        return "polish" if self.polish_only else "resume" if self.resume else "start"

    @property
    def target(self) -> Path:
        """The folder this job writes: the run's, or its polished twin's for a polish-only job."""
        return polished_dir(self.run_dir) if self.polish_only else self.run_dir


def read_status(run_dir: Path) -> dict | None:
    """status.json of a run folder, or None if there is none (or it is unreadable: the run never got going)."""
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None


def job_for(spec: RunSpec, run_dir: Path) -> Job | str:
    """The job for `spec` in `run_dir`, or the reason it is skipped.

    No config.json: a new run. Finished at >= the requested steps: skipped. Failed (a NaN loss): skipped, since a
    resume would fail the same way. Anything else (interrupted, killed, finished at fewer steps, killed before its
    first checkpoint): resumed; `tinysr.train.loop` restarts from step 0 when there is no last.pt yet, and refuses a
    config.json that disagrees with the spec.
    """
    if not (run_dir / "config.json").is_file():
        return Job(spec, run_dir, resume=False)
    status = read_status(run_dir) or {}
    state, step = status.get("state"), int(status.get("step", 0))
    if state == "finished" and step >= spec.recipe.steps:
        if spec.recipe.polish_steps and not polish_finished(run_dir, spec.recipe.polish_steps):
            return Job(spec, run_dir, resume=True, polish_only=True)
        return f"finished ({step} steps{', polished' if spec.recipe.polish_steps else ''})"
    if state == "failed":
        return f"failed at step {step} ({status.get('message', '')}); delete {run_dir} to run it again"
    return Job(spec, run_dir, resume=True)


def polish_finished(run_dir: Path, steps: int) -> bool:
    """Whether the polish stage of `run_dir` (in `polished_dir(run_dir)`) finished at `steps` steps."""
    status = read_status(polished_dir(run_dir)) or {}
    return status.get("state") == "finished" and int(status.get("step", 0)) == steps


def make_queue(specs: list[RunSpec], runs_dir: Path) -> tuple[list[Job], list[tuple[str, str]]]:
    """(jobs to run, [(name, why skipped)]); each spec's run folder is `runs_dir / spec.name`."""
    jobs, skipped = [], []
    for spec in specs:
        job = job_for(spec, Path(runs_dir) / spec.name)
        if isinstance(job, Job):
            jobs.append(job)
        else:
            skipped.append((spec.name, job))
    return jobs, skipped


# --- Executing one job -------------------------------------------------------------------------------------------
def execute_job(job: Job, *, device: str = "auto", threads: int | None = None) -> None:
    """Train `job` in this process through `tinysr.train.loop` (writing experiment.json beside the run's files), then
    polish it when its recipe says so (`tinysr.train.polish`, into `polished_dir(run_dir)`)."""
    if not job.polish_only:
        train_spec(job.spec, job.run_dir, resume=job.resume, device=device, threads=threads)
    if job.spec.recipe.polish_steps:
        polish_spec(job.spec, job.run_dir, threads=threads)


def job_command(job: Job, *, runs_dir: Path, overrides: Overrides, threads: int, device: str) -> list[str]:
    """The subprocess that executes `job`: this same command restricted to the job's row, in one process."""
    return [sys.executable, "-m", "tinysr", "experiment", "run", job.spec.table, "--only", job.spec.name,
            "--out", str(runs_dir), "--jobs", "1", "--threads", str(threads), "--device", device,
            *overrides.to_argv()]


# --- Running the queue -------------------------------------------------------------------------------------------
Executor = Callable[[Job], None]


def run_sequential(jobs: list[Job], execute: Executor, *, log: Callable[[str], None] = print) -> list[str]:
    """Execute the jobs one after another; returns "name (error)" for each failure (the others still run)."""
    failed = []
    for i, job in enumerate(jobs, 1):
        log(f"[{i}/{len(jobs)}] {job.verb} {job.spec.name} -> {job.target}")
        try:
            execute(job)
        except TinySRError as exc:
            log(f"{job.spec.name}: failed: {exc}")
            failed.append(f"{job.spec.name} ({exc})")
    return failed


def parse_devices(text: str) -> list[int]:
    """`--devices 0,1,2,3` -> CUDA indices; TinySRError naming one that is malformed or not on this machine."""
    try:
        devices = [int(d) for d in text.split(",")]
    except ValueError:
        raise TinySRError(f"--devices {text}: expected comma-separated CUDA indices such as 0,1,2,3") from None
    count = torch.cuda.device_count()
    for d in devices:
        if not 0 <= d < count or devices.count(d) > 1:
            raise TinySRError(f"--devices {text}: cuda:{d} {'is listed twice' if 0 <= d < count else 'does not exist'}"
                              f" (this machine has {count} CUDA device{'s' if count != 1 else ''})")
    return devices


def run_parallel(jobs: list[Job], command: Callable[[Job], list[str]], *, n_jobs: int, threads: int,
                 log: Callable[[str], None] = print, poll_s: float = 1.0, devices: list[int] | None = None
                 ) -> list[str]:
    """Run each job's `command` as a subprocess, `n_jobs` at a time, its output in RUN.log beside the run folder
    (not inside it: the folder belongs to `tinysr train`); returns "name (exit N, see LOG)" for each failure.
    With `devices` (CUDA indices), one job per device at a time: the subprocess sees only its GPU
    (CUDA_VISIBLE_DEVICES), as cuda:0; a finished job frees its device for the next one in the queue."""
    waiting, running, failed = list(jobs), [], []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    free = list(devices) if devices is not None else [None] * n_jobs
    try:
        while waiting or running:
            while waiting and free:
                job, gpu = waiting.pop(0), free.pop(0)
                job.run_dir.parent.mkdir(parents=True, exist_ok=True)
                logf = (job.run_dir.parent / f"{job.run_dir.name}.log").open("ab")
                job_env = env if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": str(gpu)}
                running.append((job, subprocess.Popen(command(job), stdout=logf, stderr=subprocess.STDOUT,
                                                      env=job_env), logf, gpu))
                log(f"started {job.spec.name} (pid {running[-1][1].pid}, log {logf.name}"
                    f"{'' if gpu is None else f', cuda:{gpu}'})")
            for entry in list(running):
                job, proc, logf, gpu = entry
                if proc.poll() is not None:
                    logf.close()
                    running.remove(entry)
                    free.append(gpu)
                    log(f"{job.spec.name}: {'done' if proc.returncode == 0 else f'failed (exit {proc.returncode})'}")
                    if proc.returncode != 0:
                        failed.append(f"{job.spec.name} (exit {proc.returncode}, see {logf.name})")
            time.sleep(poll_s if running else 0)
    finally:
        for _, proc, logf, _ in running:  # interrupted: stop our own children, they save last.pt on SIGINT
            proc.send_signal(2)
            proc.wait()
            logf.close()
    return failed
