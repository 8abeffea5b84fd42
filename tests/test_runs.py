"""Run folders: config checks, atomic files, metrics truncation, failed writes that lose nothing."""

import errno
import json

import pytest
import torch

from tinysr import atomic
from tinysr.train import runs
from tinysr.train.config import DataConfig, RunConfig, TrainConfig
from tinysr.errors import TinySRError
from tinysr.models import create_model


def _config(**train):
    return RunConfig(model={"n_blocks": 0, "n_feats": 4, "scale": 2, "family": "edsr"},
                     train=TrainConfig(**{"steps": 100, "learning_rate": 1e-4, **train}),
                     data=DataConfig(train=("/d/train",), val="/d/val", scale=2), protocol="study", seed=0)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_open_run_writes_config_status_and_empty_metrics(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    assert json.loads((run / "config.json").read_text()) == _config().to_dict()
    assert json.loads((run / "status.json").read_text()) == {"state": "running", "step": 0, "steps": 100,
                                                             "message": ""}
    assert (run / "metrics.jsonl").read_bytes() == b""


def test_open_run_refuses_a_used_folder_and_force_removes_only_run_files(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    (run / "notes.txt").write_text("mine")
    (run / "last.pt").write_bytes(b"old")
    with pytest.raises(TinySRError, match=r"run: already exists \(a tinysr run\); use --resume .* or --force"):
        runs.open_run(run, _config())
    runs.open_run(run, _config(learning_rate=1e-3), force=True)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "metrics.jsonl", "notes.txt", "status.json"]
    assert json.loads((run / "config.json").read_text())["train"]["learning_rate"] == 1e-3


def test_resume_allows_more_steps_and_refuses_other_changes_unless_forced(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    runs.resume_run(run, _config(steps=500))  # raising --steps is a resume, not a change
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 500
    before = _snapshot(run)
    with pytest.raises(TinySRError) as err:
        runs.resume_run(run, _config(steps=500, learning_rate=1e-3))
    assert str(err.value) == (f"{run}: its config.json disagrees with the given options: train.learning_rate: "
                              "0.0001 in the run, 0.001 given; use --force to override")
    assert _snapshot(run) == before  # nothing lost or changed
    runs.resume_run(run, _config(steps=500, learning_rate=1e-3), force=True)
    assert json.loads((run / "config.json").read_text())["train"]["learning_rate"] == 1e-3


def test_config_differences_names_each_entry():
    other = _config(learning_rate=1e-3).to_dict() | {"protocol": "standard", "tinysr_version": "9.9"}
    other["model"] = other["model"] | {"n_feats": 8}
    assert runs.config_differences(_config().to_dict(), other) == [
        "model.n_feats: 4 in the run, 8 given",
        "protocol: 'study' in the run, 'standard' given",
        "train.learning_rate: 0.0001 in the run, 0.001 given",
    ]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(TinySRError, match=r"^.*/plain: not a tinysr run folder \(no config.json\)$"):
        runs.resume_run(tmp_path / "plain", _config())


def test_truncate_metrics_drops_later_steps_and_a_torn_line(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    for step in (10, 20, 30):
        runs.append_metrics(run, {"step": step, "val_psnr": float(step)})
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "val_ps')  # killed mid-append
    assert [r["step"] for r in runs.read_metrics(run)] == [10, 20, 30]
    runs.truncate_metrics(run, 20)
    assert (run / "metrics.jsonl").read_text() == '{"step": 10, "val_psnr": 10.0}\n{"step": 20, "val_psnr": 20.0}\n'


def test_last_pt_round_trips_with_weights_only(tmp_path):
    state = {"step": 7, "model": create_model("edsr-tiny").state_dict(), "loop": {"best_psnr": -float("inf")},
             "sampler": {"bit_generator": {"state": {"state": 2**127 + 5}}}}
    runs.save_last(tmp_path, state)
    loaded = runs.load_last(tmp_path)  # torch.load(weights_only=True) inside
    assert loaded["step"] == 7 and loaded["sampler"]["bit_generator"]["state"]["state"] == 2**127 + 5
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())
    assert runs.load_last(tmp_path / "nothing-yet") is None


def test_disk_full_is_one_line_and_the_previous_checkpoint_survives(tmp_path, monkeypatch):
    runs.save_last(tmp_path, {"step": 1})
    real = atomic.atomic_write_bytes

    def full_disk(path, data, **kwargs):
        if str(path).endswith("last.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, **kwargs)

    monkeypatch.setattr(atomic, "atomic_write_bytes", full_disk)
    with pytest.raises(TinySRError) as err:
        runs.save_last(tmp_path, {"step": 2})
    assert str(err.value) == f"cannot write {tmp_path}/last.pt: No space left on device"
    assert runs.load_last(tmp_path) == {"step": 1}


def test_a_read_only_folder_is_one_line(tmp_path, monkeypatch):
    # Tests run as root in CI, where chmod 0o500 does not stop writes: simulate the OS answer instead.
    def read_only(path, data, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic, "atomic_write_bytes", read_only)
    with pytest.raises(TinySRError, match=r"^cannot write .*/run/config.json: Read-only file system$"):
        runs.open_run(tmp_path / "run", _config())


def test_resume_refuses_fewer_steps_than_done_and_changes_nothing(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    runs.save_last(run, {"step": 60, "model": create_model("edsr-tiny").state_dict()})
    before = _snapshot(run)
    with pytest.raises(TinySRError) as err:
        runs.resume_run(run, _config(steps=50))
    assert str(err.value) == f"{run}: the run is at step 60, past --steps 50; give --steps 60 or more"
    assert _snapshot(run) == before
    assert runs.last_step(run) == 60 and runs.last_step(tmp_path) == 0


def test_metrics_a_torn_last_line_is_dropped_with_a_warning(tmp_path):
    run = runs.open_run(tmp_path / "run", _config())
    runs.append_metrics(run, {"step": 10, "val_psnr": 30.0})
    with open(run / runs.METRICS, "a") as f:
        f.write('{"step": 20, "val_ps')  # a kill mid-append
    with pytest.warns(UserWarning, match=r"metrics\.jsonl: dropped a torn last line"):
        assert runs.read_metrics(run) == [{"step": 10, "val_psnr": 30.0}]


@pytest.mark.parametrize("bad", ['{"step": 20, "val_ps', '[1, 2]', '{"val_psnr": 3}'])
def test_metrics_a_bad_middle_line_is_an_error_and_nothing_is_rewritten(tmp_path, bad):
    run = runs.open_run(tmp_path / "run", _config())
    for step in (10, 20):
        runs.append_metrics(run, {"step": step, "val_psnr": 30.0})
    lines = (run / runs.METRICS).read_text().splitlines()
    (run / runs.METRICS).write_text("\n".join([lines[0], bad, lines[1]]) + "\n")
    before = (run / runs.METRICS).read_bytes()
    with pytest.raises(TinySRError, match=r"metrics\.jsonl: line 2 is not"):
        runs.read_metrics(run)
    with pytest.raises(TinySRError, match=r"line 2"):
        runs.truncate_metrics(run, 10)  # what a resume does: refused, not a silent rewrite without line 2
    assert (run / runs.METRICS).read_bytes() == before
