"""`tinysr report RUNS_DIR --out DIR`: the study's tables (Markdown and CSV) and figures, rebuilt from run folders.

Steps:
1. read every run folder below RUNS_DIR (`results.load_runs`) and group them by parent folder (one table each);
2. per distinct validation setting of a table (val folder, scale, protocol, Table I's hr_downscale), measure the
   bicubic baseline on the same images through `tinysr.evaluate.evaluate`: the one step that reads image data,
   because a bicubic row is not stored in any run folder;
3. write `<table>.md`, `<table>.csv` and the figures of `plots.py`, then `report.md` linking them all.
The protocol of every table is printed above it, read from config.json, never inferred from the dataset.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinysr.errors import TinySRError
from tinysr.experiments.results import RunRecord, RunSummary, hr_downscale, load_runs, summarize
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

    @property
    def label(self) -> str:
        name = Path(self.folder).name or self.folder
        return name if self.hr_downscale == 1 else f"{name} (HR/{self.hr_downscale})"


def validation_of(run: RunRecord) -> Validation:
    data = run.config.get("data", {})
    if "val" not in data or "scale" not in data:
        raise TinySRError(f"{run.path / 'config.json'}: no data.val / data.scale (not a tinysr run config?)")
    return Validation(folder=str(data["val"]), scale=int(data["scale"]), protocol=str(run.config.get("protocol",
                      "study")), hr_downscale=hr_downscale(run))


def bicubic_psnr(val: Validation) -> float | None:
    """Mean PSNR of MATLAB bicubic on `val` (HR shrunk by hr_downscale first, like training); None, with a warning,
    when the validation folder is gone (the rest of the report still comes from the run folders)."""
    from tinysr.data.degrade import shrink_hr
    from tinysr.data.folder import decode_all, image_folder
    from tinysr.evaluate import bicubic_upscaler, evaluate

    try:
        image_set = image_folder(val.folder)
    except TinySRError as exc:
        warnings.warn(f"bicubic row left out: {exc}", stacklevel=2)
        return None
    images = ((p.stem, shrink_hr(img, val.hr_downscale)) for p, img in decode_all(image_set))
    report = evaluate(bicubic_upscaler(val.scale), images, scale=val.scale, protocol=PROTOCOLS[val.protocol],
                      dataset=image_set.name, model="bicubic")
    return report.mean["psnr"]


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
    notes += [f"val set {v.label}: {v.folder}, x{v.scale}" for v in settings]
    notes.append("best PSNR: max of val_psnr in metrics.jsonl; L1 loss: train_loss of the last logged step; "
                 "s / 1k steps: median over the log; parameters: trainable, from config.json")
    return Table(name=name, notes=notes, rows=rows, summaries=summaries, runs=runs, bicubic=measured)


def group_runs(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault("runs" if run.group == "." else run.group, []).append(run)
    return groups


def build_report(runs_dir: str | Path, out: str | Path, *, device: str = "cpu", visual: bool = True,
                 bicubic: Callable[[Validation], float | None] = bicubic_psnr) -> list[Path]:
    """Write the tables and figures of every group of runs below `runs_dir` into `out`; returns the files written."""
    from tinysr.experiments import plots

    runs = load_runs(runs_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[Validation, float | None] = {}

    def cached_bicubic(v: Validation) -> float | None:
        if v not in cache:
            cache[v] = bicubic(v)
        return cache[v]

    written: list[Path] = []
    sections = [f"# Report on {runs_dir}", ""]
    for name, group in group_runs(runs).items():
        table = build_table(name, group, cached_bicubic)
        stem = name.replace("/", "-")
        (out / f"{stem}.md").write_text(table.to_markdown())
        table.write_csv(out / f"{stem}.csv")
        figures = plots.table_figures(table, out, stem=stem, device=device, visual=visual)
        written += [out / f"{stem}.md", out / f"{stem}.csv", *figures]
        sections += [table.to_markdown(), *[f"![{f.stem}]({f.name})" for f in figures], ""]
    (out / "report.md").write_text("\n".join(sections))
    return [out / "report.md", *written]
