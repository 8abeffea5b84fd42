"""tiny-pareto report: references as data, test-set evaluation of best weights, Pareto figures (params and MACs)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from tinysr.models.weights import save_weights
from tinysr.cli import main
from tinysr.experiments.references import (
    REFERENCES,
    canonical_test_set,
    estimated_macs,
    references_for,
)
from tinysr.experiments.report import Validation, bicubic_psnr, build_report
from tinysr.models import PRESETS, EDSRConfig, config_to_dict, model_from_config

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / os.environ.get("TINYSR_DATA", "../shared/data")).resolve()
SET5_BICUBIC_X2 = 33.6818  # measured here on Set5, standard protocol (test_report pins the same)


def test_references_are_the_published_numbers():
    by_name = {(r.name, r.scale): r for r in REFERENCES}
    assert by_name[("ESPCN", 2)].params == 3_424 and by_name[("ESPCN", 2)].psnr["Urban100"] == 29.37
    assert by_name[("FSRCNN D6S3M1", 4)].psnr == {"Set5": 29.49}
    assert [r.name for r in references_for(2, "Set14")] == [
        "eSR-MAX", "eSR-CNN C2D1S3", "eSR-CNN C2D9S3", "ESPCN", "FSRCNN", "SESR-M5"]
    assert [r.name for r in references_for(2, "Set5")][-1] == "FSRCNN"  # SESR-M5: Set14 only
    assert estimated_macs(by_name[("eSR-MAX", 2)]) == 200 * 360 * 640
    assert (canonical_test_set("B100"), canonical_test_set("set5"), canonical_test_set("DIV2K")) == (
        "BSD100", "Set5", None)


def _write_run(run: Path, config, *, psnr: float, perturb: bool, val: dict) -> None:
    """A finished run folder by hand; `perturb` adds noise to the weights (else a tiny net equals its anchor)."""
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "tinysr_version": "0.1.0", "model": config_to_dict(config), "train": {"steps": 10},
        "data": {"train": [str(DATA / "Set14")], "scale": config.scale, "degradation": "bicubic", **val},
        "protocol": "standard", "seed": 0}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 10, "train_loss": 5.0, "val_psnr": psnr, "val_ssim": 0.9,
                                                   "sec_per_1k_steps": 1.0, "learning_rate": 0.0}) + "\n")
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 10, "steps": 10, "message": ""}))
    torch.manual_seed(0)
    model = model_from_config(config)
    if perturb:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
    save_weights(run / "best.safetensors", model, meta={"step": 10, "val_psnr": psnr, "protocol": "standard"})


@pytest.fixture(scope="module")
def pareto_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pareto") / "runs"
    split = {"val": None, "val_split": 2, "val_names": ["comic", "zebra"]}
    _write_run(root / "tiny-pareto" / "tiny-100-x2", PRESETS["tiny-100-x2"], psnr=30.5, perturb=False, val=split)
    _write_run(root / "tiny-pareto" / "tiny-1k-x2", PRESETS["tiny-1k-x2"], psnr=31.0, perturb=True, val=split)
    _write_run(root / "tiny-pareto" / "edsr-0-4-x2", EDSRConfig(n_blocks=0, n_feats=4, scale=2), psnr=30.0,
               perturb=False, val=split)
    return root


def test_split_validation_bicubic_uses_the_held_out_images():
    val = Validation("", 2, "standard", 1, train_folders=(str(DATA / "Set14"),), held_out=("comic", "zebra"))
    assert val.label == "2 held out of Set14"
    both = bicubic_psnr(val)
    one = bicubic_psnr(Validation("", 2, "standard", 1, train_folders=(str(DATA / "Set14"),), held_out=("comic",)))
    assert 20 < one < both < 35  # comic is the harder of the two: the mean moves when zebra joins


def test_report_with_test_data(pareto_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(pareto_runs), "--out", str(out), "--no-visual", "--test-data", str(DATA / "Set5")]) == 0
    with (out / "tiny-pareto-test.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert list(rows)[:3] == ["bicubic", "bicubic (published)", "eSR-MAX"]
    assert float(rows["bicubic"]["Set5"]) == pytest.approx(SET5_BICUBIC_X2, abs=0.005)
    assert rows["bicubic (published)"]["Set5"] == "33.66" and rows["FSRCNN"]["Set5"] == "37.00"
    # An untrained tiny net is exactly its bicubic anchor; its deployed size and cost are those of models.complexity.
    tiny = rows["tiny-100-x2"]
    assert float(tiny["Set5"]) == pytest.approx(float(rows["bicubic"]["Set5"]), abs=0.005)
    assert (tiny["parameters"], tiny["MMACs / 720p (convs)"], tiny["MMACs anchor"], tiny["val PSNR"]) == (
        "96", "20.7", "27.0", "30.50")
    assert rows["edsr-0-4-x2"]["MMACs / 720p (convs)"] == "290.3" and rows["edsr-0-4-x2"]["MMACs anchor"] == "0.0"
    assert float(rows["tiny-1k-x2"]["Set5"]) < float(rows["bicubic"]["Set5"])  # random residual: worse than bicubic
    md = (out / "tiny-pareto-test.md").read_text()
    assert "protocol standard" in md and "| eSR-CNN C2D9S3 | published | x2 | 912 | ~210.1 |" in md
    for name in ("tiny-pareto-pareto-params-x2.png", "tiny-pareto-pareto-macs-x2.png",
                 "tiny-pareto-Set5-pareto-params-x2.png", "tiny-pareto-Set5-pareto-macs-x2.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / name).stat().st_size > 20_000
    report = (out / "report.md").read_text()
    assert "![tiny-pareto-Set5-pareto-macs-x2](tiny-pareto-Set5-pareto-macs-x2.png)" in report
    assert "val set 2 held out of Set14: images comic, zebra, x2" in report


def test_report_without_test_data_has_validation_pareto_only(pareto_runs, tmp_path):
    files = build_report(pareto_runs, tmp_path / "r", visual=False, bicubic=lambda v: 29.0)
    names = {f.name for f in files}
    assert {"tiny-pareto-pareto-params-x2.png", "tiny-pareto-pareto-macs-x2.png"} <= names
    assert not any("test" in n or "Set5" in n for n in names)


def test_missing_test_folder_is_one_line(pareto_runs, tmp_path, capsys):
    assert main(["report", str(pareto_runs), "--out", str(tmp_path / "r"), "--no-visual",
                 "--test-data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinysr: error: ") and "nope" in err and "\n" not in err


def test_split_runs_get_no_crop_figure_and_the_cwd_is_never_scanned(pareto_runs, tmp_path, monkeypatch):
    """A --val-split run has no folder of validation images: the crop figure is skipped, not built from '.'."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("not an image")
    monkeypatch.chdir(cwd)
    files = build_report(pareto_runs, tmp_path / "r", visual=True, bicubic=lambda v: 29.0)
    names = {f.name for f in files}
    assert "tiny-pareto-pareto-params-x2.png" in names
    assert not any(n.endswith("-visual.png") for n in names)
