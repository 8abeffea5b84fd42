"""The tables of a report: one group of runs as rows (bicubic rows first) under the notes that say what they mean.

`Validation` is what a PSNR was measured on (folder or held-out images, scale, protocol, Table I's HR shrink); runs
that share one share the bicubic row. Read from run folders only (`results`), written by `report` and `plots`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinysr.errors import TinySRError
from tinysr.experiments.results import RunRecord, RunSummary, hr_downscale, summarize
from tinysr.metrics import PROTOCOLS

COLUMNS = ("run", "val set", "dataset", "HR size", "LR size", "s / 1k steps", "best PSNR (dB)", "best step",
           "L1 loss", "parameters", "steps", "state", "study PSNR (dB)", "study parameters")


@dataclass(frozen=True)
class Validation:
    """What a PSNR was measured on: the bicubic row is shared by every run with the same setting."""

    folder: str
    scale: int
    protocol: str
    hr_downscale: int
    train_folders: tuple[str, ...] = ()  # a --val-split run: the training folders the images were held out of,
    held_out: tuple[str, ...] = ()  # and the held-out image names (folder is then "")

    @property
    def label(self) -> str:
        if self.held_out:
            name = f"{len(self.held_out)} held out of {'+'.join(Path(f).name for f in self.train_folders)}"
        else:
            name = Path(self.folder).name or self.folder
        return name if self.hr_downscale == 1 else f"{name} (HR/{self.hr_downscale})"


def validation_of(run: RunRecord) -> Validation:
    data = run.config.get("data", {})
    if "val" not in data or "scale" not in data:
        raise TinySRError(f"{run.path / 'config.json'}: no data.val / data.scale (not a tinysr run config?)")
    common = {"scale": int(data["scale"]), "protocol": str(run.config.get("protocol", "study")),
              "hr_downscale": hr_downscale(run)}
    if data["val"] is None:
        return Validation(folder="", train_folders=tuple(data.get("train", ())),
                          held_out=tuple(data.get("val_names") or ()), **common)
    return Validation(folder=str(data["val"]), **common)


def _fmt(value: float | int | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def run_cells(s: RunSummary, val: Validation) -> list[str]:
    return [s.label, val.label, s.dataset, s.hr_size, s.lr_size, _fmt(s.sec_per_1k, ".1f"), _fmt(s.best_psnr, ".2f"),
            _fmt(s.best_step, "d"), _fmt(s.l1_loss, ".3f"), f"{s.params:,}", str(s.steps_done), s.state,
            _fmt(s.reference_psnr, ".2f"), _fmt(s.reference_params, ",")]


def bicubic_cells(val: Validation, psnr: float | None, reference: float | None) -> list[str]:
    return ["bicubic", val.label, "", "", "", "", _fmt(psnr, ".2f"), "", "", "0", "", "", _fmt(reference, ".2f"), ""]


@dataclass(frozen=True)
class Table:
    """One group of runs, ready to print: its rows (bicubic rows first) and the notes above it."""

    name: str
    notes: list[str]
    rows: list[list[str]]
    summaries: list[RunSummary]
    runs: list[RunRecord]
    bicubic: dict[Validation, float | None]

    def to_markdown(self) -> str:
        head = [f"## {self.name}", "", *[f"- {n}" for n in self.notes], ""]
        body = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        body += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(head + body) + "\n"

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows([[c.replace(",", "") if c[:1].isdigit() else c for c in r] for r in self.rows])


def build_table(name: str, runs: list[RunRecord], bicubic: Callable[[Validation], float | None]) -> Table:
    """The table of one group; `bicubic` measures (or looks up) a validation setting's bicubic PSNR."""
    vals = [validation_of(r) for r in runs]
    settings = list(dict.fromkeys(vals))
    measured = {v: bicubic(v) for v in settings}
    summaries = [summarize(r) for r in runs]
    refs = {v: next((r.experiment.get("reference", {}).get("bicubic_psnr") for r, rv in zip(runs, vals) if rv == v
                     and r.experiment.get("reference", {}).get("bicubic_psnr") is not None), None) for v in settings}
    rows = [bicubic_cells(v, measured[v], refs[v]) for v in settings]
    rows += [run_cells(s, v) for s, v in zip(summaries, vals)]
    notes = [PROTOCOLS[p].describe(s) for p, s in dict.fromkeys((v.protocol, v.scale) for v in settings)]
    notes += [f"val set {v.label}: {v.folder or 'images ' + ', '.join(v.held_out)}, x{v.scale}" for v in settings]
    notes.append("best PSNR: max of val_psnr in metrics.jsonl; L1 loss: train_loss of the last logged step; "
                 "s / 1k steps: median over the log; parameters: trainable, from config.json")
    return Table(name=name, notes=notes, rows=rows, summaries=summaries, runs=runs, bicubic=measured)
