"""Execute one run spec: its data, its TrainConfig and config.json, then `tinysr.train.loop.train` in RUN/.

Steps:
1. the spec's HR folders checked, with the prepare command in the error when a folder is missing;
2. the spec as a `RunConfig` (config.json: paths absolute, Table I's hr_downscale in its data);
3. `tinysr.train.start.start_run`, as `tinysr train` does: seed, data through the cache, the run opened or resumed;
4. write experiment.json (the spec, for reports) and train;
5. with a recipe's polish stage, `tinysr polish` the finished run into ROW-polished, with its own experiment.json.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.experiments.presets import DataSpec, Recipe, RunSpec, get_table
from tinysr.experiments.results import EXPERIMENT
from tinysr.metrics import PROTOCOLS
from tinysr.models import config_to_dict
from tinysr.train.config import DataConfig, RunConfig, TrainConfig
from tinysr.train.loop import TrainResult, select_device, train
from tinysr.train.polish import PolishResult, check_polishable
from tinysr.train.polish_run import polish_run
from tinysr.train.runs import STATUS
from tinysr.train.start import start_run


def check_data(data: DataSpec) -> None:
    """Raise a one-line TinySRError, with the command that makes it, for the first missing data folder."""
    for folder in (*data.train, *([data.val] if data.val is not None else [])):
        if not Path(folder).is_dir():
            hint = f"; make it with: {data.prepare}" if data.prepare else ""
            raise TinySRError(f"{folder}: no such data folder{hint} (or pass --data / --val-data)")


def train_config(recipe: Recipe) -> TrainConfig:
    return TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, patch=recipe.patch,
                       learning_rate=recipe.learning_rate, schedule=recipe.schedule, lr_step=recipe.lr_step,
                       eval_every=recipe.eval_every, protocol=recipe.protocol, seed=recipe.seed, loss=recipe.loss,
                       final_loss=recipe.final_loss, final_fraction=recipe.final_fraction,
                       revive_every=recipe.revive_every)


def spec_config(spec: RunSpec) -> RunConfig:
    """The RunConfig (config.json) of the run of `spec`; folders absolute, so a report finds them from anywhere."""
    data = DataConfig(train=tuple(str(Path(f).resolve()) for f in spec.data.train),
                      val=None if spec.data.val is None else str(Path(spec.data.val).resolve()),
                      val_split=spec.data.val_split, scale=spec.model.scale, degradation=spec.recipe.degradation,
                      hr_downscale=spec.data.hr_downscale)
    return RunConfig(model=config_to_dict(spec.model), train=train_config(spec.recipe), data=data,
                     protocol=spec.recipe.protocol, seed=spec.recipe.seed)


def experiment_record(spec: RunSpec, row: int) -> dict:
    """experiment.json: what a report needs beyond config.json (row order, nominal sizes, published numbers)."""
    return {"table": spec.table, "name": spec.name, "key": spec.key, "row": row, "dataset": spec.data.name,
            "hr_size": spec.data.hr_size, "lr_size": spec.data.lr_size, "hr_downscale": spec.data.hr_downscale,
            "reference": dataclasses.asdict(spec.reference), "recipe": dataclasses.asdict(spec.recipe)}


def train_spec(spec: RunSpec, run_dir: Path, *, resume: bool, device: str = "auto", threads: int | None = None,
               progress: bool = True) -> TrainResult:
    """Train `spec` into `run_dir`, new or resumed (a resume refuses a config.json that disagrees), through
    `tinysr.train.start.start_run` as `tinysr train` does: the same weights for the same config.json."""
    check_data(spec.data)
    config, torch_device = spec_config(spec), select_device(device)
    row = [s.name for s in get_table(spec.table)].index(spec.name)
    with start_run(config, run_dir, resume=resume, force=False, threads=threads, device=torch_device,
                   progress=progress) as started:
        atomic_write_bytes(run_dir / EXPERIMENT, json.dumps(experiment_record(spec, row), indent=2).encode())
        return train(started.model, started.train_pairs, started.val_pairs, config=config.train, run_dir=run_dir,
                     device=torch_device, resume=resume, progress=progress)


def polished_dir(run_dir: Path) -> Path:
    """Where the polish stage of the run in `run_dir` writes: the sibling folder ROW-polished."""
    return run_dir.with_name(f"{run_dir.name}-polished")


def check_polish_stage(spec: RunSpec) -> None:
    """Refuse, before any training, a polish stage that `tinysr.train.polish` would refuse after it."""
    if not spec.recipe.polish_steps:
        return
    check_polishable(spec.model, PROTOCOLS[spec.recipe.protocol])
    if spec.data.hr_downscale != 1:
        raise TinySRError(f"{spec.name}: --polish-steps on HR images shrunk by {spec.data.hr_downscale} (Table I) is "
                          "not supported; give --polish-steps 0")


def polish_spec(spec: RunSpec, run_dir: Path, *, threads: int | None = None,
                progress: bool = True) -> PolishResult:
    """The recipe's polish stage: `spec.recipe.polish_steps` steps of `tinysr polish` from `run_dir` into
    `polished_dir(run_dir)`, started afresh (a stage of minutes: an interrupted one is redone, not resumed).

    experiment.json is written first, so a folder whose status says finished always has it. A folder that this
    stage did not make (no experiment.json naming `spec` as its source) is refused, never overwritten.
    """
    out = polished_dir(run_dir)
    if out.is_dir() and any(out.iterdir()) and _polished_from(out) != spec.name:
        raise TinySRError(f"{out}: exists and was not made by the polish stage of {spec.name}; move it away, or "
                          "give --polish-steps 0")
    row = [s.name for s in get_table(spec.table)].index(spec.name)
    record = experiment_record(spec, row) | {"name": f"{spec.name}-polished", "key": f"{spec.key}+polish",
                                             "polished_from": spec.name}
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / STATUS).unlink(missing_ok=True)  # until polish_run opens it, the folder is not finished
    except OSError as exc:
        raise TinySRError(f"cannot prepare {out}: {exc.strerror or exc}") from None
    atomic_write_bytes(out / EXPERIMENT, json.dumps(record, indent=2).encode())
    return polish_run(run_dir, out, steps=spec.recipe.polish_steps, force=True, threads=threads, progress=progress)


def _polished_from(out: Path) -> str | None:
    try:
        return json.loads((out / EXPERIMENT).read_text()).get("polished_from")
    except (OSError, ValueError, AttributeError):
        return None
