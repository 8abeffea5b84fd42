"""`tinysr report RUNS_DIR --out DIR`: the study's tables (Markdown and CSV) and figures, rebuilt from run folders.

Steps:
1. read every run folder below RUNS_DIR (`results.load_runs`) and group them by parent folder (one table each);
2. per distinct validation setting of a table (val folder, scale, protocol, Table I's hr_downscale), measure the
   bicubic baseline on the same images through `tinysr.evaluate.evaluate`: the one step that reads image data,
   because a bicubic row is not stored in any run folder;
3. write `<table>.md`, `<table>.csv`, the figures of `plots.py` and the Pareto figures of `pareto.py` (validation
   PSNR against deployed parameters and against MACs per 720p output);
4. with `test_data` (test folders): every run's best weights measured on them (`testsets.py`, standard protocol),
   `<table>-test.md/.csv` with bicubic and published rows, and the Pareto figures on the first test set with the
   published reference points;
5. `report.md` linking them all.
A run validated on held-out training images (`--val-split`) has its bicubic row measured on those same images.
The protocol of every table is printed above it, read from config.json, never inferred from the dataset.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

from tinysr.data.cache import concat
from tinysr.data.degrade import shrink_hr
from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.experiments import compressed, plots
from tinysr.experiments.pareto import pareto_figures
from tinysr.experiments.results import RunRecord, load_runs
from tinysr.experiments.tables import Table, Validation, build_table, validation_of
from tinysr.experiments.testsets import (
    TestRow,
    build_test_table,
    load_test_sets,
    run_row,
)
from tinysr.metrics import PROTOCOLS


def _validation_images(val: Validation):  # -> tuple[ImageSet, Iterator[(name, HR)]]

    if val.held_out:
        whole = concat(*(image_folder(f) for f in val.train_folders))
        wanted = set(val.held_out)
        image_set = dataclasses.replace(whole, name=val.label, lr_paths={},
                                        hr_paths=tuple(p for p in whole.hr_paths if p.stem in wanted))
    else:
        image_set = image_folder(val.folder)
    return image_set, ((p.stem, shrink_hr(img, val.hr_downscale)) for p, img in decode_all(image_set))


def bicubic_psnr(val: Validation) -> float | None:
    """Mean PSNR of MATLAB bicubic on `val` (HR shrunk by hr_downscale first, like training); None, with a warning,
    when the validation folder is gone (the rest of the report still comes from the run folders)."""
    try:
        image_set, images = _validation_images(val)
    except TinySRError as exc:
        warnings.warn(f"bicubic row left out: {exc}", stacklevel=2)
        return None
    report = evaluate(bicubic_upscaler(val.scale), images, scale=val.scale, protocol=PROTOCOLS[val.protocol],
                      dataset=image_set.name, model="bicubic")
    return report.mean["psnr"]


def group_runs(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault("runs" if run.group == "." else run.group, []).append(run)
    return groups


def pareto_section(table: Table, out: Path, *, stem: str, test_sets: list, device: str = "cpu"
                   ) -> tuple[list[Path], list[str]]:
    """(files, Markdown lines) of the Pareto figures on validation PSNR and, with test sets, of the test table and
    its Pareto figures on the first test set (with the published references)."""
    val_rows = [TestRow(f"bicubic ({v.label})", "bicubic", v.scale, psnr={"val": p})
                for v, p in table.bicubic.items() if p is not None]
    val_rows += [run_row(r, []) for r in table.runs]
    files = pareto_figures(val_rows, out, stem=stem, column="val", subtitle="best validation PSNR (own protocol)")
    lines = [f"![{f.stem}]({f.name})" for f in files]
    if test_sets:
        test = build_test_table(table.name, table.runs, test_sets, device=device)
        (out / f"{stem}-test.md").write_text(test.to_markdown())
        test.write_csv(out / f"{stem}-test.csv")
        figures = pareto_figures(test.rows, out, stem=f"{stem}-{test.set_keys[0]}", column=test.set_keys[0],
                                 subtitle="standard protocol; checkpoints chosen on validation, not on this set")
        files += [out / f"{stem}-test.md", out / f"{stem}-test.csv", *figures]
        lines += ["", test.to_markdown(), *[f"![{f.stem}]({f.name})" for f in figures]]
    return files, lines


def build_report(runs_dir: str | Path, out: str | Path, *, device: str = "cpu", visual: bool = True,
                 bicubic: Callable[[Validation], float | None] = bicubic_psnr,
                 test_data: list[str] | None = None) -> list[Path]:
    """Write the tables and figures of every group of runs below `runs_dir` into `out`; returns the files written.
    `test_data`: test folders on which every run's best weights are also measured (step 4)."""
    runs = load_runs(runs_dir)
    test_sets = load_test_sets(test_data) if test_data else []
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
        pareto_files, pareto_lines = pareto_section(table, out, stem=stem, test_sets=test_sets, device=device)
        written += [out / f"{stem}.md", out / f"{stem}.csv", *figures, *pareto_files]
        sections += [table.to_markdown(), *[f"![{f.stem}]({f.name})" for f in figures], *pareto_lines, ""]
    if visual:
        figure, lines = compressed_section(out, validation_of(runs[0]))
        written += figure
        sections += lines
    (out / "report.md").write_text("\n".join(sections))
    return [out / "report.md", *written]


def compressed_section(out: Path, val: Validation) -> tuple[list[Path], list[str]]:
    """(files, Markdown lines) of the visual comparison on compressed input (`experiments.compressed`), on the first
    image of the first run's validation set; nothing, with a warning, when that set cannot be read."""
    try:
        name, hr = next(iter(_validation_images(val)[1]))
    except (TinySRError, StopIteration) as exc:
        warnings.warn(f"compressed comparison left out: {exc or 'no validation image'}", stacklevel=2)
        return [], []
    hr, srs, scores = compressed.compare(hr)
    figure = compressed.write_figure(out / "compressed.png", hr, srs, scores, title=f"{name}, ")
    lines = [f"## Compressed input: {name} sent as a JPEG of quality {compressed.QUALITY} at x2", "",
             *[f"- {n}: {psnr:.2f} dB ({psnr - scores['bicubic']:+.2f} over bicubic)" for n, psnr in scores.items()],
             "", f"![compressed]({figure.name})", ""]
    return [figure], lines
