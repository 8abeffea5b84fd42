"""The study's tables as data, and the sweep runner's queue (the executor is mocked: nothing trains here)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.experiments import runner
from tinysr.experiments.presets import TABLES, Recipe, select_rows
from tinysr.experiments.results import count_config_params

from helpers import smooth_pngs


def test_tables_have_the_studys_rows():
    keys = {name: [s.key for s in rows] for name, rows in TABLES.items()}
    assert keys == {
        "table1": ["div2k-1972", "div2k-986", "div2k-493", "cinic-256", "cinic-128"],
        "table2": ["0", "1", "2", "4", "8", "16", "32", "64"],
        "table3": ["b16-f256", "b16-f512", "b32-f512"],
        "table4": ["1", "2", "4", "16", "64"],
        "tiny-pareto": ["100", "250", "500", "1k", "2k", "5k", "edsr", "1k-x3", "1k-x4"],
    }
    assert [s.data.hr_downscale for s in TABLES["table1"]] == [1, 2, 4, 1, 2]
    assert [(s.data.hr_size, s.data.lr_size) for s in TABLES["table1"]][::2] == [
        ("1972x1435", "986x718"), ("493x359", "247x180"), ("128x128", "64x64")]
    assert all(s.data.name == "CINIC-10" and s.data.hr_size == "256x256" for t in ("table2", "table3", "table4")
               for s in TABLES[t])
    assert {s.recipe for t in ("table1", "table2", "table3", "table4") for s in TABLES[t]} == {Recipe(
        steps=300_000, batch_size=1, patch=48, learning_rate=1e-4, lr_step=200_000, eval_every=1_000)}


@pytest.mark.parametrize("spec", [s for rows in TABLES.values() for s in rows], ids=lambda s: s.name)
def test_parameter_counts_match_the_published_ones(spec):
    assert count_config_params(spec.model) == spec.reference.params  # the deployed (collapsed) net's
    assert spec.name == f"{spec.table}/{spec.name.split('/')[1]}"
    assert spec.model.scale == {"1k-x3": 3, "1k-x4": 4}.get(spec.key, 2)


def test_tiny_pareto_is_trained_on_t291_with_a_held_out_split():
    import os

    rows = TABLES["tiny-pareto"]
    assert [s.reference.params for s in rows] == [96, 234, 500, 940, 1668, 4672, 963, 981, 844]
    recipe = Recipe(steps=20_000, batch_size=16, patch=48, learning_rate=2e-3, schedule="cosine", eval_every=1_000,
                    protocol="standard", loss="l1-y")
    # Y-only nets fit luma; the RGB EDSR and the two rows whose bundled weights came from the first recipe use RGB L1
    first = {"edsr", "5k", "1k-x3"}
    # the <=1k x4 net adds dead-unit revival and a final squared-error phase (the third recipe); the <=1k x2 net,
    # trained expanded, only the final squared-error phase (the fourth)
    final_mse = dataclasses.replace(recipe, final_loss="mse-y", final_fraction=0.2)
    reviving = dataclasses.replace(final_mse, revive_every=2_500)
    trained = {s.key: dataclasses.replace(recipe, loss="l1") if s.key in first else
               reviving if s.key == "1k-x4" else final_mse if s.key == "1k" else recipe for s in rows}
    # the three <=1k tiny rows then polish for 8 steps (the sixth recipe: their bundled weights are polished)
    assert {s.key: s.recipe for s in rows} == {
        k: dataclasses.replace(r, polish_steps=8) if k in {"1k", "1k-x3", "1k-x4"} else r for k, r in trained.items()}
    assert {s.key: s.model.expand for s in rows if s.key != "edsr"} == {
        "100": 1, "250": 1, "500": 1, "1k": 4, "2k": 1, "5k": 4, "1k-x3": 4, "1k-x4": 1}
    root = os.environ.get("TINYSR_DATA", "../shared/data")  # read once, when the presets are imported
    assert {(s.data.train, s.data.val, s.data.val_split) for s in rows} == {
        ((f"{root}/T91", f"{root}/BSD200"), None, 10)}


def test_the_headline_row():
    (tiny,) = select_rows("table4", ["4"])
    assert (tiny.model.n_blocks, tiny.model.n_feats, count_config_params(tiny.model)) == (0, 4, 963)
    assert (tiny.reference.psnr, tiny.reference.bicubic_psnr) == (29.85, 29.24)
    assert sum(s.reference.psnr is not None for rows in TABLES.values() for s in rows) == 1  # none invented


def test_only_selects_by_key_or_full_name_in_table_order():
    assert [s.name for s in select_rows("table2", ["2", "0", "1"])] == ["table2/b0-f64", "table2/b1-f64",
                                                                       "table2/b2-f64"]
    assert [s.name for s in select_rows("table4", ["64", "table4/b0-f1"])] == ["table4/b0-f1", "table4/b0-f64"]
    assert len(select_rows("table3", None)) == 3
    with pytest.raises(TinySRError, match=r"--only 3: not in table2; its keys are: 0, 1, 2, 4"):
        select_rows("table2", ["3"])
    with pytest.raises(TinySRError, match="unknown table 'table5'"):
        select_rows("table5")


def test_overrides_apply_and_round_trip_to_argv():
    o = runner.Overrides(steps=50, eval_every=10, data=("a", "b"), val_data="v")
    (spec,) = runner.plan("table4", only=["4"], overrides=o)
    assert (spec.recipe.steps, spec.recipe.eval_every, spec.recipe.batch_size) == (50, 10, 1)
    assert (spec.data.train, spec.data.val, spec.data.hr_size) == (("a", "b"), "v", "n/a")
    assert (spec.reference.params, spec.reference.psnr, spec.reference.bicubic_psnr) == (963, None, None)
    assert runner.plan("table4", only=["4"], overrides=runner.Overrides(steps=5))[0].reference.psnr == 29.85
    assert o.to_argv() == ["--steps", "50", "--eval-every", "10", "--val-data", "v", "--data", "a", "b"]
    (tiny,) = runner.plan("tiny-pareto", only=["1k"], overrides=runner.Overrides(polish_steps=0))
    assert tiny.recipe.polish_steps == 0 and runner.Overrides(polish_steps=0).to_argv() == ["--polish-steps", "0"]
    (div2k,) = runner.plan("table1", only=["div2k-493"], overrides=runner.Overrides(val_data="v"))
    assert (div2k.data.hr_downscale, div2k.data.train, div2k.data.hr_size) == (4, TABLES["table1"][2].data.train,
                                                                               "493x359")


def fake_status(run: Path, state: str, step: int, steps: int, *, last: bool = True) -> None:
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "status.json").write_text(json.dumps({"state": state, "step": step, "steps": steps, "message": "x"}))
    if last:
        (run / "last.pt").write_bytes(b"weights")


def test_queue_skips_finished_and_resumes_unfinished(tmp_path):
    fake_status(tmp_path / "table2/b0-f64", "finished", 100, 100)
    fake_status(tmp_path / "table2/b1-f64", "interrupted", 40, 100)
    fake_status(tmp_path / "table2/b2-f64", "finished", 60, 60)  # finished, but at fewer steps than asked now
    fake_status(tmp_path / "table2/b4-f64", "failed", 30, 100)
    fake_status(tmp_path / "table2/b8-f64", "running", 0, 100, last=False)  # killed before its first checkpoint
    specs = runner.plan("table2", only=["0", "1", "2", "4", "8", "16"], overrides=runner.Overrides(steps=100))
    jobs, skipped = runner.make_queue(specs, tmp_path)
    assert [(j.spec.name, j.resume, j.run_dir) for j in jobs] == [
        ("table2/b1-f64", True, tmp_path / "table2/b1-f64"), ("table2/b2-f64", True, tmp_path / "table2/b2-f64"),
        ("table2/b8-f64", True, tmp_path / "table2/b8-f64"), ("table2/b16-f64", False, tmp_path / "table2/b16-f64")]
    assert skipped[0] == ("table2/b0-f64", "finished (100 steps)")
    assert skipped[1][0] == "table2/b4-f64" and skipped[1][1].startswith("failed at step 30 (x); delete")

    calls = []

    def execute(job: runner.Job) -> None:
        calls.append((job.spec.name, job.resume, job.spec.recipe.steps))
        if job.resume:
            raise TinySRError("boom")

    failed = runner.run_sequential(jobs, execute, log=lambda _: None)
    assert calls == [("table2/b1-f64", True, 100), ("table2/b2-f64", True, 100), ("table2/b8-f64", True, 100),
                     ("table2/b16-f64", False, 100)]
    assert failed == ["table2/b1-f64 (boom)", "table2/b2-f64 (boom)", "table2/b8-f64 (boom)"]  # the rest still ran


def test_a_polishing_row_is_done_only_when_its_polished_folder_is_finished(tmp_path):
    (spec,) = runner.plan("tiny-pareto", only=["1k"], overrides=runner.Overrides(steps=100))
    run = tmp_path / spec.name
    fake_status(run, "finished", 100, 100)
    (job,), _ = runner.make_queue([spec], tmp_path)
    polished = tmp_path / "tiny-pareto" / "tiny-1k-x2-polished"
    assert (job.polish_only, job.verb, job.run_dir, job.target) == (True, "polish", run, polished)  # polish left
    fake_status(tmp_path / "tiny-pareto" / "tiny-1k-x2-polished", "interrupted", 3, 8)
    assert runner.make_queue([spec], tmp_path)[0][0].verb == "polish"
    (tmp_path / "tiny-pareto" / "tiny-1k-x2-polished" / "status.json").write_text(
        json.dumps({"state": "finished", "step": 8, "steps": 8}))
    assert runner.make_queue([spec], tmp_path) == ([], [(spec.name, "finished (100 steps, polished)")])


def test_cli_run_goes_through_the_executor(tmp_path, monkeypatch, capsys):
    fake_status(tmp_path / "table4/b0-f1", "finished", 20, 20)
    calls = []
    monkeypatch.setattr(runner, "execute_job", lambda job, *, device, threads: calls.append(
        (job.spec.name, job.resume, job.spec.recipe.steps, job.spec.recipe.batch_size, device, threads)))
    (tmp_path / "t").mkdir(), (tmp_path / "v").mkdir()
    assert main(["experiment", "run", "table4", "--only", "1,2", "--steps", "20", "--batch-size", "4",
                 "--out", str(tmp_path), "--threads", "1", "--device", "cpu", "--data", str(tmp_path / "t"),
                 "--val-data", str(tmp_path / "v")]) == 0
    assert calls == [("table4/b0-f2", False, 20, 4, "cpu", 1)]
    assert "skip table4/b0-f1: finished (20 steps)" in capsys.readouterr().out


def test_job_command_reruns_one_row_in_a_subprocess(tmp_path):
    (spec,) = runner.plan("table2", only=["0"])
    job = runner.Job(spec, tmp_path / spec.name, resume=False)
    cmd = runner.job_command(job, runs_dir=tmp_path, overrides=runner.Overrides(steps=7), threads=1, device="cpu")
    assert cmd == [sys.executable, "-m", "tinysr", "experiment", "run", "table2", "--only", "table2/b0-f64", "--out",
                   str(tmp_path), "--jobs", "1", "--threads", "1", "--device", "cpu", "--steps", "7"]


def test_parallel_jobs_run_as_subprocesses_with_logs(tmp_path):
    specs = runner.plan("table4", only=["1", "2", "4"])
    jobs = [runner.Job(s, tmp_path / s.name, resume=False) for s in specs]
    code = "import os, sys; print('threads', os.environ['OMP_NUM_THREADS']); sys.exit({})"

    def command(job):
        return [sys.executable, "-c", code.format(3 if job.spec.key == "2" else 0)]

    failed = runner.run_parallel(jobs, command, n_jobs=2, threads=1, log=lambda _: None, poll_s=0.05)
    assert failed == [f"table4/b0-f2 (exit 3, see {tmp_path / 'table4' / 'b0-f2.log'})"]
    assert (tmp_path / "table4" / "b0-f4.log").read_text() == "threads 1\n"


def tiny_folder(path: Path, n: int, seed: int) -> Path:
    """n smooth 104x104 RGB PNGs (LR 52, above the study's LR patch 48)."""
    return smooth_pngs(path, n, seed, coarse=8, size=104)


def test_run_trains_skips_and_resumes_for_real(tmp_path, monkeypatch, capsys):
    """Through `tinysr.train.loop`: 4 steps, then the same command skips, then --steps 6 resumes; then a report."""
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    train, val = tiny_folder(tmp_path / "train", 3, 0), tiny_folder(tmp_path / "val", 2, 1)
    argv = ["experiment", "run", "table4", "--only", "1", "--out", str(tmp_path / "runs"), "--data", str(train),
            "--val-data", str(val), "--batch-size", "2", "--eval-every", "2", "--device", "cpu", "--threads", "1"]
    run = tmp_path / "runs" / "table4" / "b0-f1"
    assert main([*argv, "--steps", "4"]) == 0
    assert [m["step"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [2, 4]
    config = json.loads((run / "config.json").read_text())
    assert (config["model"]["n_feats"], config["train"]["patch"], config["data"]["val"]) == (1, 48, str(val))
    assert json.loads((run / "experiment.json").read_text())["reference"]["params"] == 108
    assert main([*argv, "--steps", "4"]) == 0
    assert "skip table4/b0-f1: finished (4 steps)" in capsys.readouterr().out
    assert main([*argv, "--steps", "6"]) == 0
    assert "resume table4/b0-f1" in capsys.readouterr().out
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert [m["step"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [2, 4, 6]
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--no-visual"]) == 0
    assert "| b0-f1 | val | custom | n/a | n/a |" in (tmp_path / "report" / "table4.md").read_text()


def test_missing_data_names_the_prepare_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "run", "table2", "--only", "0", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "data/cinic/train: no such data folder; make it with: tinysr prepare cinic" in err
    assert not (tmp_path / "runs" / "table2" / "b0-f64").exists()


def test_devices_run_one_job_per_gpu_at_a_time(tmp_path):
    """--devices: each subprocess sees only its GPU (CUDA_VISIBLE_DEVICES); a freed GPU takes the next job."""
    specs = runner.plan("table4", only=["1", "2", "4"])
    jobs = [runner.Job(s, tmp_path / s.name, resume=False) for s in specs]
    code = ("import os, time; gpu = os.environ['CUDA_VISIBLE_DEVICES']; open(os.path.join({!r}, 'busy' + gpu), 'x');"
            " time.sleep(0.3); os.remove(os.path.join({!r}, 'busy' + gpu)); print('gpu', gpu)")
    command = lambda job: [sys.executable, "-c", code.format(str(tmp_path), str(tmp_path))]  # noqa: E731
    failed = runner.run_parallel(jobs, command, n_jobs=2, threads=1, log=lambda _: None, poll_s=0.05, devices=[3, 5])
    assert failed == []  # 'x' mode: a second job on a busy GPU would have failed
    logs = [(tmp_path / "table4" / f"{s.name.split('/')[1]}.log").read_text() for s in specs]
    assert logs[:2] == ["gpu 3\n", "gpu 5\n"] and logs[2] in ("gpu 3\n", "gpu 5\n")


def test_devices_that_do_not_exist_are_a_one_line_error(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runner.parse_devices("1,0") == [1, 0]
    with pytest.raises(TinySRError, match=r"--devices 0,1,2,3: cuda:2 does not exist \(this machine has 2 CUDA dev"):
        runner.parse_devices("0,1,2,3")
    with pytest.raises(TinySRError, match="cuda:1 is listed twice"):
        runner.parse_devices("1,1")
    with pytest.raises(TinySRError, match="expected comma-separated CUDA indices"):
        runner.parse_devices("gpu0")
    assert main(["experiment", "run", "table4", "--only", "1", "--devices", "0,1,2,3", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("tinysr: error: --devices 0,1,2,3: cuda:2 does not exist "
                                       "(this machine has 2 CUDA devices)\n")


def test_a_spec_with_val_split_validates_on_held_out_training_images(tmp_path, monkeypatch):
    from dataclasses import replace

    from tinysr.experiments.presets import DataSpec
    from tinysr.experiments.training import spec_config, train_spec

    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    train = tiny_folder(tmp_path / "train", 4, 0)
    (row,) = select_rows("table4", ["1"])
    spec = replace(row, data=DataSpec(name="custom", train=(str(train),), val=None, val_split=1),
                   recipe=replace(row.recipe, steps=2, eval_every=2, batch_size=2))
    assert spec_config(spec).to_dict()["data"] | {"train": None} == {
        "train": None, "val": None, "val_split": 1, "val_names": None, "scale": 2, "degradation": "bicubic"}
    run = tmp_path / "run"
    train_spec(spec, run, resume=False, device="cpu", progress=False)
    data = json.loads((run / "config.json").read_text())["data"]
    assert (data["val"], data["val_split"], data["val_names"]) == (None, 1, ["img3"])
    train_spec(replace(spec, recipe=replace(spec.recipe, steps=4)), run, resume=True, device="cpu", progress=False)
    assert json.loads((run / "config.json").read_text())["data"] == data
    assert runner.Overrides(val_data="v").apply(spec).data.val_split is None
    with pytest.raises(ValueError, match="exactly one of val"):
        DataSpec(name="x", train=("t",), val="v", val_split=3)


def test_a_tiny_pareto_row_trains_then_polishes_for_real(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    train, val = tiny_folder(tmp_path / "train", 3, 0), tiny_folder(tmp_path / "val", 2, 1)
    argv = ["experiment", "run", "tiny-pareto", "--only", "1k", "--out", str(tmp_path / "runs"), "--data", str(train),
            "--val-data", str(val), "--batch-size", "2", "--eval-every", "2", "--steps", "4", "--polish-steps", "1",
            "--device", "cpu", "--threads", "1"]
    assert main(argv) == 0
    run, polished = tmp_path / "runs" / "tiny-pareto" / "tiny-1k-x2", tmp_path / "runs" / "tiny-pareto" / "tiny-1k-x2-polished"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((polished / "status.json").read_text()) == {"state": "finished", "step": 1, "steps": 1,
                                                                  "message": ""}
    config = json.loads((polished / "config.json").read_text())
    assert config["polish"]["steps"] == 1 and config["polish"]["source_run"] == str(run.resolve())
    experiment = json.loads((polished / "experiment.json").read_text())
    assert (experiment["name"], experiment["key"], experiment["polished_from"]) == (
        "tiny-pareto/tiny-1k-x2-polished", "1k+polish", "tiny-pareto/tiny-1k-x2")
    assert [m["step"] for m in map(json.loads, (polished / "metrics.jsonl").read_text().splitlines())] == [0, 1]
    capsys.readouterr()
    assert main(argv) == 0
    assert "skip tiny-pareto/tiny-1k-x2: finished (4 steps, polished)" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--no-visual"]) == 0
    table = (tmp_path / "report" / "tiny-pareto.md").read_text()
    assert "| tiny-1k-x2 |" in table and "| tiny-1k-x2-polished |" in table


def test_the_polish_stage_never_overwrites_a_folder_it_did_not_make(tmp_path):
    from tinysr.experiments.training import polish_spec

    (spec,) = runner.plan("tiny-pareto", only=["1k"])
    run = tmp_path / "tiny-pareto" / "tiny-1k-x2"
    mine = tmp_path / "tiny-pareto" / "tiny-1k-x2-polished"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text("{}")  # e.g. a hand-made `tinysr polish ... --steps 20` of this row
    with pytest.raises(TinySRError) as err:
        polish_spec(spec, run, progress=False)
    assert "was not made by the polish stage of tiny-pareto/tiny-1k-x2" in str(err.value)
    assert [p.name for p in mine.iterdir()] == ["config.json"]


def test_a_polish_stage_that_would_refuse_fails_before_training(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(runner, "execute_job", lambda job, **kw: calls.append(job))
    (tmp_path / "t").mkdir(), (tmp_path / "v").mkdir()
    argv = ["experiment", "run", "tiny-pareto", "--only", "edsr", "--out", str(tmp_path), "--data", str(tmp_path / "t"),
            "--val-data", str(tmp_path / "v"), "--polish-steps", "2"]
    assert main(argv) == 2  # the RGB EDSR row, validated on luma: polish would refuse it after training
    assert "luma only" in capsys.readouterr().err and calls == []
