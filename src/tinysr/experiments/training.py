"""Execute one run spec: its data, its TrainConfig and config.json, then `tinysr.train.loop.train` in RUN/.

Steps:
1. the spec's HR folders as ImageSets (Table I's hr_downscale set on both), with the prepare command in the error
   when a folder is missing;
2. the TrainConfig from the spec's recipe, and config.json through `tinysr.train.runs.run_config` (paths absolute, so a
   report finds the validation folder from anywhere; `data.hr_downscale` added when it is not 1);
3. decode/degrade once through the cache (`load_pairs`), then open the run (new) or check and resume it;
4. write experiment.json (the spec, for reports) and train;
5. with a recipe's polish stage, `tinysr polish` the finished run into ROW-polished, with its own experiment.json.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tinysr.errors import TinySRError
from tinysr.experiments.presets import DataSpec, Recipe, RunSpec, get_table

EXPERIMENT = "experiment.json"


def check_data(data: DataSpec) -> None:
    """Raise a one-line TinySRError, with the command that makes it, for the first missing data folder."""
    for folder in (*data.train, *([data.val] if data.val is not None else [])):
        if not Path(folder).is_dir():
            hint = f"; make it with: {data.prepare}" if data.prepare else ""
            raise TinySRError(f"{folder}: no such data folder{hint} (or pass --data / --val-data)")


def image_sets(data: DataSpec):  # -> tuple[ImageSet, ImageSet | None]
    """(training set, validation set) of `data`: its folders, concatenated, HR shrunk by `hr_downscale`; the
    validation set is None when `data.val_split` holds images out of the training set instead."""
    from tinysr.data.cache import concat
    from tinysr.data.folder import image_folder

    check_data(data)
    train_sets = [image_folder(f) for f in data.train]
    train_set = train_sets[0] if len(train_sets) == 1 else concat(*train_sets, name="+".join(s.name for s in train_sets))
    train_set = dataclasses.replace(train_set, hr_downscale=data.hr_downscale)
    if data.val is None:
        return train_set, None
    return train_set, dataclasses.replace(image_folder(data.val), hr_downscale=data.hr_downscale)


def train_config(recipe: Recipe):  # -> TrainConfig
    from tinysr.train.config import TrainConfig

    return TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, patch=recipe.patch,
                       learning_rate=recipe.learning_rate, schedule=recipe.schedule, lr_step=recipe.lr_step, eval_every=recipe.eval_every,
                       protocol=recipe.protocol, seed=recipe.seed, loss=recipe.loss, final_loss=recipe.final_loss,
                       final_fraction=recipe.final_fraction, revive_every=recipe.revive_every)


def spec_config(spec: RunSpec) -> dict:
    """config.json of the run of `spec` (see `tinysr.train.runs.run_config`)."""
    from tinysr.train import runs
    from tinysr.models import config_to_dict

    config = runs.run_config(
        model=config_to_dict(spec.model), train=dataclasses.asdict(train_config(spec.recipe)),
        train_data=[str(Path(f).resolve()) for f in spec.data.train],
        val_data=None if spec.data.val is None else str(Path(spec.data.val).resolve()), val_split=spec.data.val_split,
        scale=spec.model.scale, degradation=spec.recipe.degradation, protocol=spec.recipe.protocol,
        seed=spec.recipe.seed)
    if spec.data.hr_downscale != 1:
        config["data"]["hr_downscale"] = spec.data.hr_downscale
    return config


def experiment_record(spec: RunSpec, row: int) -> dict:
    """experiment.json: what a report needs beyond config.json (row order, nominal sizes, published numbers)."""
    return {"table": spec.table, "name": spec.name, "key": spec.key, "row": row, "dataset": spec.data.name,
            "hr_size": spec.data.hr_size, "lr_size": spec.data.lr_size, "hr_downscale": spec.data.hr_downscale,
            "reference": dataclasses.asdict(spec.reference), "recipe": dataclasses.asdict(spec.recipe)}


def train_spec(spec: RunSpec, run_dir: Path, *, resume: bool, device: str = "auto", progress: bool = True):
    # -> TrainResult
    """Train `spec` into `run_dir`, new or resumed (a resume refuses a config.json that disagrees)."""
    from tinysr.train import runs
    from tinysr.atomic import atomic_write_bytes
    from tinysr.data.cache import load_pairs
    from tinysr.data.split import split_pairs
    from tinysr.models import model_from_config
    from tinysr.train.loop import select_device, train

    train_set, val_set = image_sets(spec.data)
    config, run_config = train_config(spec.recipe), spec_config(spec)
    scale, degradation = spec.model.scale, spec.recipe.degradation
    train_pairs = load_pairs(train_set, scale=scale, degradation=degradation, progress=progress)
    if val_set is None:  # held out of the cached training set, by index (the cache entry is the whole set's)
        train_pairs, val_pairs = split_pairs(train_pairs, spec.data.val_split, seed=spec.recipe.seed)
        run_config["data"]["val_names"] = list(val_pairs.names)
    else:
        val_pairs = load_pairs(val_set, scale=scale, degradation=degradation, progress=progress)
    (runs.resume_run if resume else runs.open_run)(run_dir, run_config)
    row = [s.name for s in get_table(spec.table)].index(spec.name)
    atomic_write_bytes(run_dir / EXPERIMENT, json.dumps(experiment_record(spec, row), indent=2).encode())
    return train(model_from_config(spec.model), train_pairs, val_pairs, config=config, run_dir=run_dir,
                 device=select_device(device), resume=resume, progress=progress)


def polished_dir(run_dir: Path) -> Path:
    """Where the polish stage of the run in `run_dir` writes: the sibling folder ROW-polished."""
    return run_dir.with_name(f"{run_dir.name}-polished")


def check_polish_stage(spec: RunSpec) -> None:
    """Refuse, before any training, a polish stage that `tinysr.train.polish` would refuse after it."""
    if not spec.recipe.polish_steps:
        return
    from tinysr.metrics import PROTOCOLS
    from tinysr.train.polish import check_polishable

    check_polishable(spec.model, PROTOCOLS[spec.recipe.protocol])
    if spec.data.hr_downscale != 1:
        raise TinySRError(f"{spec.name}: --polish-steps on HR images shrunk by {spec.data.hr_downscale} (Table I) is "
                          "not supported; give --polish-steps 0")


def polish_spec(spec: RunSpec, run_dir: Path, *, progress: bool = True):  # -> PolishResult
    """The recipe's polish stage: `spec.recipe.polish_steps` steps of `tinysr polish` from `run_dir` into
    `polished_dir(run_dir)`, started afresh (a stage of minutes: an interrupted one is redone, not resumed).

    experiment.json is written first, so a folder whose status says finished always has it. A folder that this
    stage did not make (no experiment.json naming `spec` as its source) is refused, never overwritten.
    """
    from tinysr.atomic import atomic_write_bytes
    from tinysr.train.polish_run import polish_run
    from tinysr.train.runs import STATUS

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
    return polish_run(run_dir, out, steps=spec.recipe.polish_steps, force=True, progress=progress)


def _polished_from(out: Path) -> str | None:
    try:
        return json.loads((out / EXPERIMENT).read_text()).get("polished_from")
    except (OSError, ValueError, AttributeError):
        return None
