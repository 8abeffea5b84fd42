"""`tinysr models --openmodeldb MODEL`: the model's OpenModelDB entry (`tinysr.openmodeldb`), written to -o OUT.json
(never half-written, never over a file without --force) or printed; what the entry still lacks, as warnings.

The training fields come from what recorded the training: for a bundled model, the command `models.json` keeps,
read here with tinysr's own grammar (`tinysr.cli.parser`), one `&&` segment at a time:
- `tinysr experiment run TABLE --only ROW`: the row's recipe and data (`tinysr.experiments.presets`, which imports
  torch), with the command's --steps, --batch-size and --data;
- `tinysr train`: its options, with `TrainConfig`'s defaults where it gives none; with --resume, the run an earlier
  segment started, trained on to the new --steps (tinysr's --steps counts all steps); with --init, a fine-tune;
- anything else (`cp`, `tinysr polish`, whose L-BFGS steps are not iterations) trains nothing: the description
  quotes the whole command.
For a run folder, or its best weights, the run's config.json; for any other weights file, nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import shlex
import warnings
from collections.abc import Mapping
from pathlib import Path

from tinysr.atomic import atomic_open
from tinysr.errors import TinySRError, one_line
from tinysr.infer.load import load_weights_file, resolve_weights
from tinysr.openmodeldb import DEFAULT_AUTHOR, Publication, Training, entry_name, model_entry, training_from_run
from tinysr.pretrained import PretrainedModel, read_table
from tinysr.runfolder import CONFIG, RUN_BEST


def parse_recorded(verb: str, words: list[str], *, source: str) -> argparse.Namespace:
    """A recorded `tinysr VERB ...` (words after "tinysr") parsed by the CLI's grammar; its usage error as one
    TinySRError naming `source`."""
    from tinysr.cli.parser import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser(verbs=[verb]).parse_args(words)
    except SystemExit:
        raise TinySRError(f"{source}: its training command does not parse ({stderr.getvalue().strip()})") from None


def experiment_training(args: argparse.Namespace, *, source: str) -> Training:
    """`tinysr experiment run TABLE --only ROW`: the one row's recipe and data, with the command's overrides."""
    try:
        from tinysr.experiments.presets import select_rows
    except ImportError:  # torch, through tinysr.models
        raise TinySRError(f"{source}: its training recipe is a row of `tinysr experiment`'s tables, whose module "
                          "needs torch (pip install 'tinysr[train]')") from None
    rows = select_rows(args.table, args.only.split(",") if args.only else None)
    if len(rows) != 1:
        raise TinySRError(f"{source}: its training command runs {len(rows)} rows of {args.table}, not one")
    recipe, data = rows[0].recipe, rows[0].data
    datasets = tuple(Path(folder).name for folder in args.data) if args.data else tuple(data.name.split("+"))
    return Training(iterations=args.steps or recipe.steps, batch_size=args.batch_size or recipe.batch_size,
                    patch=recipe.patch, datasets=datasets, degradation=recipe.degradation)


def train_training(args: argparse.Namespace, previous: Training | None, *, source: str,
                   bundled: Mapping[str, PretrainedModel]) -> Training:
    """`tinysr train`: a new run (from scratch, or fine-tuned from --init), or --resume of the previous one."""
    from tinysr.train.config import DataConfig, TrainConfig

    if args.resume:
        if previous is None:
            raise TinySRError(f"{source}: its training command resumes a run that no earlier part of it started")
        return dataclasses.replace(previous, iterations=args.steps or previous.iterations,
                                   batch_size=args.batch_size or previous.batch_size,
                                   patch=args.patch or previous.patch)
    if not args.train_data:
        raise TinySRError(f"{source}: its `tinysr train` command names no --train-data")
    defaults = TrainConfig()
    return Training(iterations=args.steps or defaults.steps, batch_size=args.batch_size or defaults.batch_size,
                    patch=args.patch or defaults.patch, datasets=tuple(Path(d).name for d in args.train_data),
                    degradation=args.degradation or DataConfig.degradation,
                    pretrained=args.init if args.init in bundled else None)


def recorded_training(row: PretrainedModel, bundled: Mapping[str, PretrainedModel]) -> Training | None:
    """The training that a bundled model's recorded command did (see the module docstring), or None."""
    source, training = f"bundled model {row.name!r}", None
    for segment in row.train_command.split("&&"):
        try:
            words = shlex.split(segment, comments=True)  # a recorded command may end in a "# note"
        except ValueError as exc:
            raise TinySRError(f"{source}: its training command does not parse ({exc})") from None
        if words[:3] == ["tinysr", "experiment", "run"]:
            training = experiment_training(parse_recorded("experiment", words[1:], source=source), source=source)
        elif words[:2] == ["tinysr", "train"]:
            args = parse_recorded("train", words[1:], source=source)
            training = train_training(args, training, source=source, bundled=bundled)
    return None if training is None else dataclasses.replace(training, command=row.train_command)


def run_training(weights: Path, bundled: Mapping[str, PretrainedModel]) -> Training | None:
    """The training of a run folder's best weights, from the run's config.json; None for another file."""
    config = weights.parent / CONFIG
    if weights.name != RUN_BEST or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TinySRError(f"{config}: cannot read the run's config ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise TinySRError(f"{config}: not a run's config (expected a JSON object)")
    return training_from_run(data, source=str(config), bundled=list(bundled))


def check_output(out: Path, *, force: bool) -> None:
    if out.suffix.lower() != ".json":
        raise TinySRError(f"-o {out}: an OpenModelDB entry is a .json file")
    if out.is_dir():
        raise TinySRError(f"-o {out}: is a folder")
    if out.exists() and not force:
        raise TinySRError(f"{out}: already exists; pass --force to replace it")


def run(args: argparse.Namespace) -> int:
    out = None if args.output is None else Path(args.output)
    if out is not None:
        check_output(out, force=args.force)
    publication = Publication(authors=tuple(args.author or (DEFAULT_AUTHOR,)), license=args.license,
                              tags=tuple(args.tag or ()), **({"date": args.date} if args.date else {}))
    weights = resolve_weights(args.openmodeldb)
    network = load_weights_file(weights, trust=args.trust)
    bundled = {row.name: row for row in read_table()}
    row = bundled.get(args.openmodeldb)
    training = recorded_training(row, bundled) if row else run_training(weights, bundled)
    own_name = row.name if row else weights.parent.name if weights.name == RUN_BEST else weights.stem
    files = [(weights, args.url or []), *((Path(path), urls) for path, *urls in args.resource or [])]
    entry = model_entry(name=args.name or entry_name(own_name, network.scale), spec=row.name if row else weights.name,
                        config=network.config, params=network.n_params, files=files, publication=publication,
                        training=training, psnr=row.psnr if row else None, protocol=row.protocol if row else None)
    for note in entry.notes:
        warnings.warn(note)
    if out is None:
        print(entry.text())
        return 0
    try:
        with atomic_open(out, replace=args.force) as f:
            f.write(entry.text().encode("utf-8"))
    except FileExistsError:
        raise TinySRError(f"{out}: already exists; pass --force to replace it") from None
    print(one_line(f"wrote {out}: the OpenModelDB entry of {entry.id} (its file there: data/models/{entry.id}.json)"))
    return 0
