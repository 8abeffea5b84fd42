"""Run folders: the files a training run writes and the only files reports read.

A run is a folder RUN/ holding (the contract shared with `tinysr experiment`, `tinysr report` and `tinysr eval`):
  config.json       written atomically at start (and again on a resume that raises `steps` or is forced):
                    {"tinysr_version", "model", "train", "data": {"train", "val", "scale", "degradation"},
                    "protocol", "seed"} (`tinysr.train.config.RunConfig` reads and writes it); a run validating
                    on held-out training images has data.val null,
                    data.val_split N and data.val_names (`tinysr.data.split`), and data.split_seed when the
                    draw has its own seed (`--split-seed`; else it is seeded by "seed")
  metrics.jsonl     one JSON line per evaluation, appended and flushed; on resume, lines past the resumed step go
  best.safetensors  the best weights by validation PSNR (`tinysr.models.weights.save_weights`, config inside)
  last.pt           everything needed to resume; tensors/dicts/lists/numbers/strings only, so
                    `torch.load(weights_only=True)` reads it; its "trained_with" entry records the config parts a
                    resume takes from last.pt rather than config.json ({"train", "model", "threads"}), so that
                    an edit of them in config.json is refused instead of silently ignored (`resume_run`)
  status.json       {"state": "running" | "finished" | "interrupted" | "failed", "step", "steps", "message"}

Every file except metrics.jsonl is written atomically (temporary file, fsync, rename) through
`tinysr.atomic.atomic_write_bytes`. A write that fails raises a one-line TinySRError such as
"cannot write RUN/last.pt: No space left on device"; the previous file survives.

Test hook: ``TINYSR_TEST_SLOW_CHECKPOINT=STEP:SECONDS`` makes the last.pt save of step STEP sleep SECONDS after the
temporary file is complete and before the rename, so a test can SIGKILL the process inside that window. It delays
that one write only (a `before_rename` callback of the atomic write), never another file or thread.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tinysr import atomic, faults
from tinysr.errors import TinySRError, one_line
from tinysr.models import config_from_dict, count_params, model_from_config
from tinysr.models import weights as checkpoint
from tinysr.integrity import check_digest, digest
from tinysr import lock
from tinysr.train.config import RunConfig

from tinysr.runfolder import CONFIG, INTEGRITY, LAST, METRICS, RUN_BEST, RUN_FILES, STATUS  # noqa: F401 (re-exported)
STATES = ("running", "finished", "interrupted", "failed")
#: config.json entries a resume may change without --force.
RESUMABLE_CHANGES = frozenset({("train", "steps")})
#: config.json entries that runs before them did not record: a resume records them without calling it a change.
RECORDED_LATER = frozenset({"threads"})
#: last.pt's record of the config it was trained with (see the module docstring).
TRAINED_WITH = "trained_with"
#: What a resume cannot apply even with --force: the weights' shapes, and the random streams that last.pt continues.
FIXED_ON_RESUME = ("model", "train.seed")
SLOW_CHECKPOINT_HOOK = "TINYSR_TEST_SLOW_CHECKPOINT"


# ---------------------------------------------------------------- writing
def _write(path: Path, data: bytes, *, before_rename: Callable[[], None] | None = None) -> None:
    """Atomic write; an OSError (disk full, read-only folder) becomes one line naming the file."""
    try:
        atomic.atomic_write_bytes(path, data, before_rename=before_rename)
    except OSError as exc:
        raise TinySRError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_json(path: Path, obj: Any) -> None:
    _write(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_status(run_dir: Path, *, state: str, step: int, steps: int, message: str = "") -> None:
    """Replace status.json; `state` is one of `STATES`."""
    assert state in STATES, state
    _write_json(Path(run_dir) / STATUS, {"state": state, "step": step, "steps": steps, "message": message})


def save_best(run_dir: Path, model: nn.Module, *, step: int, val_psnr: float, protocol: str) -> None:
    path = Path(run_dir) / RUN_BEST
    try:
        checkpoint.save_weights(path, model, meta={"step": step, "val_psnr": val_psnr, "protocol": protocol})
    except OSError as exc:
        raise TinySRError(f"cannot write {path}: {exc.strerror or exc}") from None


def _slow_rename_for_tests(step: int) -> Callable[[], None] | None:
    """TEST HOOK (see the module docstring): a pause before the rename that publishes step `step`'s last.pt."""
    spec = os.environ.get(SLOW_CHECKPOINT_HOOK, "")
    hook_step, _, seconds = spec.partition(":")
    if not spec or int(hook_step) != step:
        return None
    return lambda: time.sleep(float(seconds))


def save_last(run_dir: Path, state: dict[str, Any]) -> None:
    """Write last.pt atomically; `state` holds tensors, dicts, lists, ints, floats and strs only."""
    buffer = io.BytesIO()
    torch.save({**state, INTEGRITY: digest(state)}, buffer)
    pause = _slow_rename_for_tests(int(state.get("step", -1)))
    _write(Path(run_dir) / LAST, buffer.getvalue(), before_rename=pause)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """Append one evaluation's line to metrics.jsonl, flushed and fsynced."""
    path = Path(run_dir) / METRICS
    try:
        line = json.dumps(row) + "\n"
        with open(path, "a") as f:
            f.write(line[: len(line) // 2])
            f.flush()
            faults.point("mid-append:metrics.jsonl")
            f.write(line[len(line) // 2:])
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise TinySRError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- reading
def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of metrics.jsonl. A torn LAST line (a kill mid-append) is dropped, with a one-line warning; a bad
    line anywhere else (not UTF-8, not JSON, a number Python will not parse) is an error naming the file and line,
    never a silent rewrite."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise TinySRError(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line.decode("utf-8"))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, and int() past its digit limit
            if number == len(lines):
                warnings.warn(f"{path}: dropped a torn last line (a write cut short)", stacklevel=2)
                break
            raise TinySRError(f"{path}: line {number} is not valid JSON; the log is damaged (restore it or start "
                              "the run over)") from None
        if not isinstance(row, dict) or type(row.get("step")) is not int:
            raise TinySRError(f"{path}: line {number} is not a metrics row (no integer step)")
        huge = [key for key, value in row.items() if type(value) is int and abs(value) >= 2 ** 63]
        if huge:  # json reads 4,000-digit integers; reports would fail on them (float() overflows)
            raise TinySRError(f"{path}: line {number}: {one_line(huge[0])!r} is not a usable number")
        rows.append(row)
    return rows


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop the lines with step > `step`, so that the log matches the resumed weights."""
    kept = [row for row in read_metrics(run_dir) if row.get("step", 0) <= step]
    _write(Path(run_dir) / METRICS, "".join(json.dumps(row) + "\n" for row in kept).encode())


def read_json(path: Path) -> dict[str, Any]:
    """A run file's JSON object; a missing, unreadable or malformed file is one line naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise TinySRError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TinySRError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(data, dict):
        raise TinySRError(f"{path}: expected a JSON object")
    return data


def read_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run folder; TinySRError naming the folder when it is not a run."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise TinySRError(f"{run_dir}: not a tinysr run folder (no {CONFIG})")
    return read_json(run_dir / CONFIG)


def load_last(run_dir: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The resume state in last.pt, or None if the run never reached its first checkpoint."""
    path = Path(run_dir) / LAST
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises assorted types for damaged files
        raise TinySRError(f"{path}: not a readable checkpoint ({type(exc).__name__}); was it written by tinysr?") \
            from None
    if not isinstance(state, dict):
        raise TinySRError(f"{path}: not a tinysr checkpoint (a {type(state).__name__}, not a dict)")
    expected = state.pop(INTEGRITY, None)
    check_digest(state, expected, path=path)
    return state


# ---------------------------------------------------------------- opening
def _peek_last(run_dir: Path) -> dict[str, Any] | None:
    """last.pt's entries through a memory map (the weights are not read), or None if there is no last.pt yet."""
    path = Path(run_dir) / LAST
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return {"step": int(state["step"]), TRAINED_WITH: state.get(TRAINED_WITH)}
    except Exception as exc:  # torch raises assorted types for damaged files
        raise TinySRError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None


def last_step(run_dir: Path) -> int:
    """The step of last.pt (0 if there is none yet), read through a memory map: the weights are not loaded."""
    last = _peek_last(run_dir)
    return 0 if last is None else last["step"]


def trained_with(run_dir: Path, train: Any) -> dict[str, Any]:
    """last.pt's record (see the module docstring): the TrainConfig `train` the loop applies, the model of the run's
    config.json (written by `open_run` / `resume_run` just before the loop starts) and the torch CPU threads."""
    path = Path(run_dir) / CONFIG
    model = read_json(path).get("model") if path.is_file() else None
    return {"train": dataclasses.asdict(train), "model": model, "threads": torch.get_num_threads()}


#: The largest value of an integer model field, and the most trainable parameters, that a config may ask for: far
#: above the study's nets (EDSR's paper model: 256 filters, 32 blocks, 43 M parameters), far below an allocation
#: that would take the machine down (n_feats 1e9: 144 GB for one conv).
MAX_MODEL_FIELD = 4096
MAX_TRAIN_PARAMS = 200_000_000
#: A model config field's declared type -> (test of a value, what the error says it must be).
_FIELD_KINDS = {
    "int": (lambda v: type(v) is int and abs(v) <= MAX_MODEL_FIELD, f"an integer of at most {MAX_MODEL_FIELD}"),
    "float": (lambda v: type(v) in (int, float) and math.isfinite(v) and abs(v) <= MAX_MODEL_FIELD,
              f"a finite number of at most {MAX_MODEL_FIELD}"),
    "bool": (lambda v: type(v) is bool, "true or false"),
    "str": (lambda v: type(v) is str, "a string"),
}


def checked_model_config(model: Any, *, source: str | os.PathLike) -> Any:
    """The model config of a config.json "model" entry, checked before anything is allocated: fields of their
    declared types (integers at most `MAX_MODEL_FIELD`, finite floats), values its class accepts, and at most
    `MAX_TRAIN_PARAMS` parameters (counted on torch's meta device, which allocates nothing)."""
    try:
        config = config_from_dict(model)
    except TinySRError as exc:
        raise TinySRError(f"{source}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise TinySRError(f"{source}: model: {one_line(exc)}") from None
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        fine, what = _FIELD_KINDS.get(str(field.type), (lambda v: True, ""))
        if not fine(value):
            raise TinySRError(f"{source}: model.{field.name} must be {what}, got {value!r}")
    with torch.device("meta"):
        params = count_params(model_from_config(config))
    if params > MAX_TRAIN_PARAMS:
        raise TinySRError(f"{source}: the model has {params:,} parameters; tinysr trains at most "
                          f"{MAX_TRAIN_PARAMS:,}")
    return config


def read_run_config(run_dir: Path) -> RunConfig:
    """config.json of a run folder as a RunConfig, its model checked (`checked_model_config`); a one-line
    TinySRError naming the file and the bad field."""
    path = Path(run_dir) / CONFIG
    config = RunConfig.from_dict(read_config(run_dir), source=path)
    checked_model_config(config.model, source=path)
    return config


def config_differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """'section.key: stored vs given' for each entry that differs, ignoring the version, `RESUMABLE_CHANGES` and
    the `RECORDED_LATER` entries that `stored` lacks."""
    diffs = []
    for section in sorted(set(stored) | set(given)):
        if section == "tinysr_version" or (section in RECORDED_LATER and section not in stored):
            continue
        a, b = stored.get(section), given.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if (section, key) not in RESUMABLE_CHANGES and a.get(key) != b.get(key):
                    diffs.append(f"{section}.{key}: {a.get(key)!r} in the run, {b.get(key)!r} given")
        elif a != b:
            diffs.append(f"{section}: {a!r} in the run, {b!r} given")
    return diffs


def trained_differences(record: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """'key: recorded vs given' for each entry of last.pt's record (`trained_with`) that the resumed config changes
    (`RESUMABLE_CHANGES` aside), where last.pt, not config.json, would decide."""
    diffs = []
    for section in ("train", "model"):
        a, b = record.get(section) or {}, given.get(section) or {}
        diffs += [f"{section}.{key}: {a.get(key)!r} in last.pt, {b.get(key)!r} now" for key in sorted(set(a) | set(b))
                  if (section, key) not in RESUMABLE_CHANGES and a.get(key) != b.get(key)]
    if record.get("threads") is not None and given.get("threads") not in (None, record["threads"]):
        diffs.append(f"threads: {record['threads']!r} in last.pt, {given['threads']!r} now")
    return diffs


def open_run(run_dir: str | os.PathLike, config: RunConfig, *, force: bool = False,
             steps: int | None = None) -> Path:
    """Start a new run in `run_dir`: refuse a non-empty folder unless `force` (which deletes only the run's files).

    status.json starts at step 0 of `steps` (default: the training's, config.train.steps)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise TinySRError(f"{run_dir}: exists and is not a folder")
    lock.hold(run_dir)  # before anything is deleted or written: a second writer is refused here
    _remove_stale_temps(run_dir)
    if any(p.name != lock.LOCK for p in run_dir.iterdir()):
        if not force:
            what = "a tinysr run" if (run_dir / CONFIG).is_file() else "a non-empty folder"
            raise TinySRError(f"{run_dir}: already exists ({what}); use --resume {run_dir} to continue it "
                              "or --force to start over")
        _remove_run_files(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinySRError(f"cannot create {run_dir}: {exc.strerror or exc}") from None
    _write_json(run_dir / CONFIG, config.to_dict())
    _write(run_dir / METRICS, b"")
    write_status(run_dir, state="running", step=0, steps=config.train.steps if steps is None else steps,
                 message="")
    return run_dir


def _remove_stale_temps(run_dir: Path) -> None:
    """A writer killed mid-write (SIGKILL) leaves its temporary file; the next writer, holding the lock, removes it."""
    for name in RUN_FILES:
        atomic.remove_stale_temps(run_dir / name)


def _remove_run_files(run_dir: Path) -> None:
    """--force: delete the files a run writes (and tb/), never anything else in the folder."""
    try:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
    except OSError as exc:
        raise TinySRError(f"cannot clear {run_dir}: {exc.strerror or exc}") from None


def resume_run(run_dir: str | os.PathLike, config: RunConfig, *, force: bool = False) -> Path:
    """Check that `config` agrees with the run's config.json (except a larger `train.steps`, which must not be below
    the step of last.pt) and with what last.pt was trained with, then record it.

    A disagreement is refused unless `force`; with `force` the given config replaces the stored one, and the resume
    applies it (`tinysr.train.loop`), except the `FIXED_ON_RESUME` entries, which last.pt decides: changing those is
    refused even with `force`. An edit of config.json itself is caught against last.pt's record (`trained_with`).
    """
    run_dir = Path(run_dir)
    stored, given = read_config(run_dir), config.to_dict()
    lock.hold(run_dir)
    _remove_stale_temps(run_dir)
    last = _peek_last(run_dir) or {"step": 0, TRAINED_WITH: None}
    done, steps = last["step"], config.train.steps
    if done > steps:
        raise TinySRError(f"{run_dir}: the run is at step {done}, past --steps {steps}; give --steps {done} or more")
    diffs = config_differences(stored, given)
    if diffs and not force:
        more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
        raise TinySRError(f"{run_dir}: its {CONFIG} disagrees with the given options: {diffs[0]}{more}; "
                          "use --force to override")
    _check_trained_with(run_dir, last[TRAINED_WITH], given, force=force)
    if stored != given:
        _write_json(run_dir / CONFIG, given)
    return run_dir


def _check_trained_with(run_dir: Path, record: dict[str, Any] | None, given: dict[str, Any], *, force: bool) -> None:
    """Refuse a resume whose config differs from last.pt's record: always where last.pt decides (the model, the
    seed), else unless `force` (an edit of config.json: last.pt's optimizer state would silently override the
    learning rate and Adam constants, and the schedule would change the past steps' record)."""
    if not isinstance(record, dict):
        return  # no checkpoint yet (nothing is ignored), or one written before the record
    diffs = trained_differences(record, given)
    fixed = [d for d in diffs if d.startswith(FIXED_ON_RESUME)]
    if fixed:
        raise TinySRError(f"{run_dir}: a resume cannot change {fixed[0]} (last.pt continues those weights and random "
                          f"streams); restore {CONFIG}, or start a new run (--init {run_dir} starts from its weights)")
    if diffs and not force:
        more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
        raise TinySRError(f"{run_dir / CONFIG}: {diffs[0]}{more}: edited after last.pt was written (a resume would "
                          "not apply it as the record says); restore it, or give --force to continue with the new "
                          "value")
