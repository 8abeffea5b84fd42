"""Read finished or running run folders into plain records: the only input of `tinysr report`.

A run folder follows the run folder contract (config.json, metrics.jsonl, status.json, best.safetensors, last.pt);
runs started by `tinysr experiment run` also hold `experiment.json` (the row's spec: table, row position, nominal
HR/LR sizes, Table I's hr_downscale, the study's published numbers). Nothing here trains or reads images.

Summary conventions (also printed under every table):
- best PSNR: the maximum `val_psnr` in metrics.jsonl, and the step where it was reached;
- L1 loss: `train_loss` of the LAST logged evaluation (mean L1 on 0..255 since the previous evaluation);
- seconds per 1,000 steps: the median of `sec_per_1k_steps` over the log (robust to a slow first interval);
- parameters: trainable parameters of the deployed model of config.json (the tiny family collapsed), built on the
  meta device (no memory, no weights).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tinysr.errors import TinySRError
from tinysr.models import config_from_dict, count_params, model_from_config
from tinysr.models.complexity import deployed_config
from tinysr.train.runs import CONFIG, STATUS, read_json, read_metrics

EXPERIMENT = "experiment.json"  # written by `tinysr experiment run` beside the run folder's own files


@dataclass(frozen=True)
class RunRecord:
    """One run folder's files, parsed. `name` is the folder relative to RUNS_DIR, `group` its parent ("table2")."""

    path: Path
    name: str
    group: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    status: dict[str, Any]
    experiment: dict[str, Any]  # {} for runs not started by `tinysr experiment run`


@dataclass(frozen=True)
class RunSummary:
    """One table row; None where the run has not logged the value yet."""

    name: str
    label: str
    dataset: str
    hr_size: str
    lr_size: str
    params: int
    sec_per_1k: float | None
    best_psnr: float | None
    best_step: int | None
    l1_loss: float | None
    steps_done: int
    state: str
    reference_psnr: float | None
    reference_params: int | None


def find_runs(runs_dir: str | Path) -> list[Path]:
    """Every run folder (a folder with config.json) below `runs_dir`, sorted; TinySRError if there is none."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise TinySRError(f"{runs_dir}: no such runs folder")
    found = sorted(p.parent for p in runs_dir.rglob(CONFIG))
    if not found:
        raise TinySRError(f"{runs_dir}: no run folders in it (no {CONFIG} below it)")
    return found


def load_run(path: Path, runs_dir: Path) -> RunRecord:
    rel = path.relative_to(runs_dir)
    experiment = path / EXPERIMENT
    return RunRecord(
        path=path, name=rel.as_posix() if rel.parts else path.name,
        group=rel.parent.as_posix() if len(rel.parts) > 1 else ".",
        config=read_json(path / CONFIG), metrics=read_metrics(path),
        status=read_json(path / STATUS) if (path / STATUS).is_file() else {"state": "unknown", "step": 0},
        experiment=read_json(experiment) if experiment.is_file() else {},
    )


def load_runs(runs_dir: str | Path) -> list[RunRecord]:
    """All runs below `runs_dir`, in table order (experiment.json's row, then parameters, then name)."""
    runs_dir = Path(runs_dir)
    runs = [load_run(p, runs_dir) for p in find_runs(runs_dir)]
    return sorted(runs, key=lambda r: (r.group, r.experiment.get("row", 1 << 30), param_count(r), r.name))


def count_config_params(config: Any) -> int:
    """Trainable parameters of the DEPLOYED model of a config (a tiny net collapsed, `deployed_config`), counted on
    the meta device (no memory, no weights)."""
    with torch.device("meta"):
        return count_params(model_from_config(deployed_config(config)))


def param_count(run: RunRecord) -> int:
    """Trainable parameters of the run's model (config.json's "model")."""
    try:
        return count_config_params(config_from_dict(run.config["model"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise TinySRError(f"{run.path / CONFIG}: cannot build its model ({exc})") from None


def hr_downscale(run: RunRecord) -> int:
    """Table I's HR shrink factor of the run's data (config.json's data, else experiment.json, else 1)."""
    return int(run.config.get("data", {}).get("hr_downscale", run.experiment.get("hr_downscale", 1)))


def run_label(run: RunRecord) -> str:
    """A short legend label: the row key for experiment runs, else the folder name."""
    return run.name.rsplit("/", 1)[-1]


def training_set_name(data: dict[str, Any]) -> str:
    """The training folders' names joined ("T91+BSD200"): the dataset a run learned from (never its val folder)."""
    folders = data.get("train") or []
    return "+".join(Path(str(f)).name for f in folders) or "?"


def summarize(run: RunRecord) -> RunSummary:
    """The table row of one run (see the module docstring for how each column is computed)."""
    psnrs = [(m["val_psnr"], m["step"]) for m in run.metrics if m.get("val_psnr") is not None]
    best_psnr, best_step = max(psnrs, key=lambda t: (t[0], -t[1])) if psnrs else (None, None)
    speeds = [m["sec_per_1k_steps"] for m in run.metrics if m.get("sec_per_1k_steps") is not None]
    last = run.metrics[-1] if run.metrics else {}
    ref = run.experiment.get("reference", {})
    data = run.config.get("data", {})
    return RunSummary(
        name=run.name, label=run_label(run),
        dataset=run.experiment.get("dataset") or training_set_name(data),
        hr_size=run.experiment.get("hr_size", "n/a"), lr_size=run.experiment.get("lr_size", "n/a"),
        params=param_count(run), sec_per_1k=statistics.median(speeds) if speeds else None,
        best_psnr=best_psnr, best_step=best_step, l1_loss=last.get("train_loss"),
        steps_done=int(run.status.get("step", last.get("step", 0))), state=str(run.status.get("state", "unknown")),
        reference_psnr=ref.get("psnr"), reference_params=ref.get("params"),
    )
