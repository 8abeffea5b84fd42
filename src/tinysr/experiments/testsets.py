"""`tinysr report RUNS --test-data DIR...`: every run's best weights measured on test sets, beside bicubic and the
published references. This is evaluation, not selection: each run's checkpoint was chosen on its validation data
(for tiny-pareto a split of the training images) before any test image is read here.

Steps:
1. decode each test folder once (HWC RGB uint8 HR images);
2. per run: load best.safetensors (a tiny net collapsed for speed: same outputs up to float rounding), measure it
   with `tinysr.evaluate.evaluate` under the standard protocol at the run's scale on every test set;
3. per scale present: measure MATLAB bicubic the same way, and add the published bicubic and reference rows
   (`references.py`);
4. one `TestRow` per line, the rows `pareto.py` plots; `TestTable` prints them as Markdown and CSV.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.experiments.references import (
    PUBLISHED_BICUBIC,
    REFERENCES,
    canonical_test_set,
    estimated_macs,
)
from tinysr.experiments.results import RunRecord, count_config_params, summarize
from tinysr.models.window import upscale_array
from tinysr.metrics import PROTOCOLS
from tinysr.models import config_from_dict, deployed
from tinysr.models.complexity import anchor_macs_per_output, macs_per_output
from tinysr.models.weights import load_model
from tinysr.train.runs import RUN_BEST

PROTOCOL = "standard"
KINDS = ("run", "bicubic", "published", "published bicubic")


@dataclass(frozen=True)
class TestSet:
    """A decoded test folder; `key` is its `TEST_SETS` name ("B100" -> "BSD100") or else the folder name."""
    __test__ = False  # not a pytest class

    key: str
    folder: str
    images: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class TestRow:
    """One line of the test table and one point of the Pareto plots; None where a value does not apply.

    macs: the deployed convs' MACs per 720p output (`models.complexity`), for a published model the ESTIMATE of
    `references.estimated_macs` (`macs_estimated`); anchor_macs: bicubic anchor, chroma and colour conversion.
    psnr: mean PSNR (dB) per test-set key, plus "val" for a run's best validation PSNR.
    """
    __test__ = False  # not a pytest class

    label: str
    kind: str
    scale: int
    family: str = ""  # a run's model family ("tiny", "edsr"): the Pareto plots join each family's points
    params: int | None = None
    macs: int | None = None
    anchor_macs: int | None = None
    macs_estimated: bool = False
    psnr: dict[str, float] = field(default_factory=dict)


def load_test_sets(folders: list[str]) -> list[TestSet]:
    """Decode every test folder once; TinySRError naming a folder that is missing or holds no image."""
    sets = []
    for folder in folders:
        image_set = image_folder(folder)
        name = Path(folder).resolve().name
        sets.append(TestSet(key=canonical_test_set(name) or name, folder=str(folder),
                            images=tuple((p.stem, img) for p, img in decode_all(image_set))))
    return sets


def _mean_psnr(upscaler, test_set: TestSet, *, scale: int, model: str) -> float:

    report = evaluate(upscaler, test_set.images, scale=scale, protocol=PROTOCOLS[PROTOCOL], dataset=test_set.key,
                      model=model)
    return report.mean["psnr"]


def run_row(run: RunRecord, sets: list[TestSet], *, device: str = "cpu") -> TestRow:
    """The run's deployed size and cost, best validation PSNR, and its best weights' PSNR on every test set."""
    config = config_from_dict(run.config["model"])
    summary = summarize(run)
    psnr = {} if summary.best_psnr is None else {"val": summary.best_psnr}
    if sets and (run.path / RUN_BEST).is_file():
        model = deployed(load_model(run.path / RUN_BEST)[0])
        for s in sets:
            psnr[s.key] = _mean_psnr(lambda lr: upscale_array(model, lr, device=device), s, scale=config.scale,
                                     model=summary.label)
    return TestRow(label=summary.label, kind="run", scale=config.scale, family=config.family,
                   params=count_config_params(config),
                   macs=macs_per_output(config), anchor_macs=anchor_macs_per_output(config), psnr=psnr)


def baseline_rows(scale: int, sets: list[TestSet]) -> list[TestRow]:
    """Measured bicubic at `scale` on every set, then the published bicubic and references that have any set."""
    keys = {s.key for s in sets}
    rows = [TestRow("bicubic", "bicubic", scale, params=0, macs=0, anchor_macs=0,
                    psnr={s.key: _mean_psnr(bicubic_upscaler(scale), s, scale=scale, model="bicubic") for s in sets})]
    if keys & set(PUBLISHED_BICUBIC.get(scale, {})):
        rows.append(TestRow("bicubic (published)", "published bicubic", scale, params=0, macs=0,
                            psnr=dict(PUBLISHED_BICUBIC[scale])))
    rows += [TestRow(r.name, "published", scale, params=r.params, macs=estimated_macs(r), macs_estimated=True,
                     psnr=dict(r.psnr)) for r in REFERENCES if r.scale == scale and keys & set(r.psnr)]
    return rows


def _cell(value: float | int | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


@dataclass(frozen=True)
class TestTable:
    """The rows of one group of runs on the test sets, per scale: baselines and references first, then the runs."""
    __test__ = False  # not a pytest class

    name: str
    set_keys: list[str]
    rows: list[TestRow]

    @property
    def columns(self) -> list[str]:
        return ["model", "kind", "scale", "parameters", "MMACs / 720p (convs)", "MMACs anchor", "val PSNR",
                *self.set_keys]

    def cells(self, row: TestRow) -> list[str]:
        approx = "~" if row.macs_estimated else ""
        mmacs = None if row.macs is None else row.macs / 1e6
        anchor = None if row.anchor_macs is None else row.anchor_macs / 1e6
        return [row.label, row.kind, f"x{row.scale}", _cell(row.params, ","),
                approx + _cell(mmacs, ",.1f"), _cell(anchor, ",.1f"), _cell(row.psnr.get("val"), ".2f"),
                *[_cell(row.psnr.get(k), ".2f") for k in self.set_keys]]

    def notes(self) -> list[str]:
        return [PROTOCOLS[PROTOCOL].describe(s) for s in sorted({r.scale for r in self.rows})] + [
            ("run rows: best.safetensors (chosen on the run's validation data, never on these sets) measured here; "
             "val PSNR: the run's best validation PSNR (its own protocol and images)"),
            ("parameters and MMACs: the deployed net (tiny: collapsed); MMACs per 1280x720 output; anchor: bicubic "
             "anchor + chroma + Y/CbCr, not in the convs column"),
            "published: the papers' numbers (references.py); ~MMACs = parameters x LR pixels, an estimate",
        ]

    def to_markdown(self) -> str:
        lines = [f"## {self.name}: test sets", "", *[f"- {n}" for n in self.notes()], "",
                 "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(self.cells(r)) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows([[c.replace(",", "").lstrip("~") for c in self.cells(r)] for r in self.rows])


def build_test_table(name: str, runs: list[RunRecord], sets: list[TestSet], *, device: str = "cpu") -> TestTable:
    """Steps 2-4 of the module docstring for one group of runs."""
    if not sets:
        raise TinySRError("--test-data: no test folders given")
    run_rows = [run_row(r, sets, device=device) for r in runs]
    rows = []
    for scale in sorted({r.scale for r in run_rows}):
        rows += baseline_rows(scale, sets) + [r for r in run_rows if r.scale == scale]
    return TestTable(name=name, set_keys=list(dict.fromkeys(s.key for s in sets)), rows=rows)
