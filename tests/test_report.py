"""`tinysr report`: tables and figures rebuilt from hand-written run folders (the run folder contract)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from tinysr.models.weights import save_weights
from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.experiments.report import Validation, bicubic_psnr, build_report
from tinysr.experiments.results import load_runs, summarize
from tinysr.models import EDSRConfig, config_to_dict, create_model

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / os.environ.get("TINYSR_DATA", "../shared/data")).resolve()
SET5 = DATA / "Set5"

# step -> (train_loss, val_psnr, sec_per_1k_steps); best PSNR is at step 20 for b0-f4 and at step 30 for b0-f8.
FAKE_LOGS = {
    "b0-f4": [(10, 9.5, 30.10, 12.0), (20, 8.25, 31.75, 11.0), (30, 8.5, 31.50, 13.0)],
    "b0-f8": [(10, 9.0, 30.50, 20.0), (20, 8.0, 31.90, 22.0), (30, 7.75, 32.25, 21.0)],
}


def write_fake_run(run: Path, blocks: int, feats: int, log: list, *, val: Path, state: str = "finished",
                   protocol: str = "study", experiment: dict | None = None) -> None:
    """A run folder as `tinysr train` writes it, by hand: config, metrics, status and best weights."""
    run.mkdir(parents=True)
    config = EDSRConfig(n_blocks=blocks, n_feats=feats, scale=2)
    (run / "config.json").write_text(json.dumps({
        "tinysr_version": "0.1.0", "model": config_to_dict(config), "train": {"steps": 30},
        "data": {"train": ["unused"], "val": str(val), "scale": 2, "degradation": "bicubic"},
        "protocol": protocol, "seed": 0}))
    lines = [{"step": s, "train_loss": loss, "val_psnr": p, "val_ssim": 0.9, "sec_per_1k_steps": t,
              "learning_rate": 1e-4, "wall_time": s * 0.1} for s, loss, p, t in log]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    (run / "status.json").write_text(json.dumps({"state": state, "step": log[-1][0], "steps": 30, "message": ""}))
    torch.manual_seed(0)
    save_weights(run / "best.safetensors", create_model("edsr", n_blocks=blocks, n_feats=feats, scale=2),
                 meta={"step": 20, "val_psnr": 31.0, "protocol": protocol})
    if experiment is not None:
        (run / "experiment.json").write_text(json.dumps(experiment))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_fake_run(root / "table4" / "b0-f8", 0, 8, FAKE_LOGS["b0-f8"], val=SET5, state="running")
    write_fake_run(root / "table4" / "b0-f4", 0, 4, FAKE_LOGS["b0-f4"], val=SET5, experiment={
        "row": 2, "dataset": "CINIC-10", "hr_size": "256x256", "lr_size": "128x128", "hr_downscale": 1,
        "reference": {"params": 963, "psnr": 29.85, "bicubic_psnr": 29.24}})
    return root


def test_summary_reads_pinned_values_from_metrics(runs_dir):
    runs = load_runs(runs_dir)
    assert [r.name for r in runs] == ["table4/b0-f4", "table4/b0-f8"]  # fewer parameters first
    s4, s8 = (summarize(r) for r in runs)
    assert (s4.best_psnr, s4.best_step, s4.l1_loss, s4.sec_per_1k, s4.params) == (31.75, 20, 8.5, 12.0, 963)
    assert (s8.best_psnr, s8.best_step, s8.l1_loss, s8.sec_per_1k, s8.params) == (32.25, 30, 7.75, 21.0, 3_363)
    assert (s4.reference_psnr, s4.hr_size, s8.hr_size, s8.state) == (29.85, "256x256", "n/a", "running")


def test_torn_last_metrics_line_is_dropped(runs_dir):
    path = runs_dir / "table4" / "b0-f8" / "metrics.jsonl"
    path.write_text(path.read_text() + '{"step": 40, "val_ps')
    s8 = summarize(load_runs(runs_dir)[1])
    assert (s8.best_psnr, s8.best_step) == (32.25, 30)


def test_bicubic_on_set5_matches_the_published_baseline():
    # Bicubic x2 on Set5 under the standard protocol: 33.68 dB here (test_degrade / test_evaluate pin the same;
    # the literature's 33.66 comes from a slightly different copy of the images).
    assert bicubic_psnr(Validation(str(SET5), 2, "standard", 1)) == pytest.approx(33.6818, abs=1e-3)


def test_report_writes_tables_and_figures(runs_dir, tmp_path):
    out = tmp_path / "report"
    measured = []

    def fake_bicubic(val: Validation) -> float:
        measured.append(val)
        return 30.25

    files = build_report(runs_dir, out, bicubic=fake_bicubic)
    assert measured == [Validation(str(SET5), 2, "study", 1)]  # one setting, measured once
    with (out / "table4.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["bicubic", "b0-f4", "b0-f8"]
    assert [r["best PSNR (dB)"] for r in rows] == ["30.25", "31.75", "32.25"]
    assert [r["L1 loss"] for r in rows] == ["", "8.500", "7.750"]
    assert [r["parameters"] for r in rows] == ["0", "963", "3363"]
    assert [r["study PSNR (dB)"] for r in rows] == ["29.24", "29.85", "n/a"]
    md = (out / "table4.md").read_text()
    assert "protocol study: RGB, no border crop" in md
    assert "| b0-f4 | Set5 | CINIC-10 | 256x256 | 128x128 | 12.0 | 31.75 | 20 | 8.500 | 963 | 30 | finished |" in md
    names = {p.name for p in files}
    assert {"table4-psnr.png", "table4-loss.png", "table4-params.png", "table4-visual.png"} <= names
    for name in ("table4-psnr.png", "table4-loss.png", "table4-params.png", "table4-visual.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size > 10_000
    assert "![table4-visual](table4-visual.png)" in (out / "report.md").read_text()


def test_empty_runs_dir_is_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TinySRError, match="no run folders"):
        build_report(tmp_path / "empty", tmp_path / "out")
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinysr: error: ") and "no run folders" in err and "\n" not in err
    assert main(["experiment", "report", str(tmp_path / "missing")]) == 2  # the alias
    assert capsys.readouterr().err.strip().endswith("missing: no such runs folder")


def test_corrupt_config_names_the_file(runs_dir, tmp_path):
    (runs_dir / "table4" / "b0-f8" / "config.json").write_text("{not json")
    with pytest.raises(TinySRError, match=r"b0-f8/config.json: not valid JSON"):
        build_report(runs_dir, tmp_path / "out", bicubic=lambda v: None)


def test_visual_window_equals_the_full_image_sr(tmp_path):
    """The visual runs a model on an LR window plus its receptive margin: the same pixels as a full-image SR."""
    import numpy as np

    from tinysr.models.weights import load_model
    from tinysr.experiments.plots import _margin, _upscale_window
    from tinysr.models.window import upscale_array
    from tinysr.metrics import quantize

    write_fake_run(tmp_path / "runs" / "b2-f8", 2, 8, FAKE_LOGS["b0-f8"], val=SET5)
    (run,) = load_runs(tmp_path / "runs")
    assert _margin(run) == 8
    lr = np.random.default_rng(0).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    full = quantize(upscale_array(load_model(run.path / "best.safetensors")[0], lr))
    for y, x in ((14, 16), (0, 30)):  # inside, and touching the top border
        window = _upscale_window(run, lr, (y, x, 10), 2, "cpu").astype(int)
        diff = np.abs(window - full[2 * y:2 * y + 20, 2 * x:2 * x + 20])
        assert window.shape == (20, 20, 3) and diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_the_dataset_column_names_the_training_folders_not_the_validation_folder():
    """A run trained on T91 and validated on Set5 used to be labelled "Set5"."""
    from tinysr.experiments.results import training_set_name

    assert training_set_name({"train": ["/d/T91", "/d/BSD200"], "val": "/d/Set5"}) == "T91+BSD200"
    assert training_set_name({"val": "/d/Set5"}) == "?"


def test_report_on_a_run_that_has_not_validated_yet(tmp_path, capsys):
    """A run with an empty metrics.jsonl (just started) used to end `tinysr report` in a matplotlib traceback."""
    from tinysr.train import runs
    from tinysr.train.config import DataConfig, RunConfig, TrainConfig

    config = RunConfig(model={"n_blocks": 0, "n_feats": 4, "scale": 2, "family": "edsr"}, train=TrainConfig(steps=10),
                       data=DataConfig(train=("/nowhere/T91",), val="/nowhere/Set5", scale=2), protocol="study",
                       seed=0)
    runs.open_run(tmp_path / "runs" / "r1", config)
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--no-visual"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 6 files" in out and "Traceback" not in err
    assert "| r1 |" in (tmp_path / "report" / "runs.md").read_text()


def test_report_shows_the_compressed_comparison(tmp_path, data_dir):
    from tinysr.train import runs
    from tinysr.train.config import DataConfig, RunConfig, TrainConfig

    config = RunConfig(model={"n_blocks": 0, "n_feats": 4, "scale": 2, "family": "edsr"}, train=TrainConfig(steps=10),
                       data=DataConfig(train=("/nowhere/T91",), val=str(data_dir / "Set5"), scale=2),
                       protocol="study", seed=0)
    runs.open_run(tmp_path / "runs" / "r1", config)
    files = build_report(tmp_path / "runs", tmp_path / "report", bicubic=lambda v: None)
    assert tmp_path / "report" / "compressed.png" in files
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Compressed input: baby sent as a JPEG of quality 40 at x2" in text
    assert "- tiny-1k-x2-jpeg-low: " in text and "![compressed](compressed.png)" in text
