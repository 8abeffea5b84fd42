"""Issue 25, adversarial cases of run folders: a config.json that would allocate 144 GB, a metrics.jsonl that is not
UTF-8 or holds a 5,000-digit number, a resume without --threads, and config.json edits that a resume would
silently ignore. Each is one line, before anything is written or allocated."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.train import loop, runs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, count in (("train", 3), ("val", 2)):
        (root / name).mkdir()
        for i in range(count):
            y, x = np.mgrid[0:48, 0:48] / 48
            base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 4, (48, 48, 3))
            Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _new_run(folders, run, *extra):
    return ["train", "--model", "edsr-tiny", "--train-data", str(folders / "train"), "--val-data",
            str(folders / "val"), "--out", str(run), "--steps", "4", "--eval-every", "2", "--patch", "16",
            "--batch-size", "2", "--no-progress", *extra]


@pytest.fixture()
def run(folders, tmp_path, monkeypatch, capsys):
    """A finished 4-step run trained with one thread, its last.pt at step 4."""
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "run"
    assert main(_new_run(folders, path, "--threads", "1")) == 0
    capsys.readouterr()
    return path


def _ok(argv, capsys) -> None:
    assert main(argv) == 0
    capsys.readouterr()  # the run's own lines (a "does not beat bicubic" warning after 4 steps)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tinysr: error: "), err
    return err


def _edit(run, section, key, value):
    config = json.loads((run / "config.json").read_text())
    (config[section] if section else config)[key] = value
    (run / "config.json").write_text(json.dumps(config))


def _files(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


# ------------------------------------------------------------------------------ case 10: n_feats 1e9, metrics.jsonl


@pytest.mark.parametrize("key, value, message", [
    ("n_feats", 1e9, "model.n_feats must be an integer of at most 4096, got 1000000000.0"),
    ("n_feats", 10 ** 9, "model.n_feats must be an integer of at most 4096, got 1000000000"),
    ("n_blocks", -1, "need n_blocks >= 0 and n_feats >= 1"),
    ("res_scale", "1", "model.res_scale must be a finite number"),
], ids=["n_feats-1e9", "n_feats-10**9", "n_blocks--1", "res_scale-str"])
def test_a_config_json_asking_for_a_huge_or_bad_model_is_one_line_on_resume(run, capsys, key, value, message):
    _edit(run, "model", key, value)
    before = _files(run)
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 2
    assert message in _error_line(capsys)
    assert _files(run) == before


def test_checked_model_config_counts_on_the_meta_device():
    config = runs.checked_model_config({"family": "edsr", "n_blocks": 32, "n_feats": 256, "scale": 2,
                                        "res_scale": 0.1}, source="x")
    assert config.n_feats == 256  # EDSR's paper model (40.7 M parameters at x2) is allowed
    with pytest.raises(TinySRError, match=r"^x: the model has 1,?\d{3},\d{3},\d{3},\d{3} parameters; tinysr trains at "
                                          "most 200,000,000$"):
        runs.checked_model_config({"family": "edsr", "n_blocks": 4096, "n_feats": 4096}, source="x")


@pytest.mark.parametrize("line", [b'{"step": 2, "val_psnr": 3\xff\xfe}',  # not UTF-8
                                  b'{"step": 2, "val_psnr": ' + b"9" * 5000 + b"}",  # past int()'s digit limit
                                  b'{"step": 2, "val_psnr": ' + b"9" * 4000 + b"}"],  # parsed, but float() fails
                         ids=["not-utf8", "5000-digits", "4000-digits"])
def test_a_metrics_line_that_is_not_utf8_or_holds_a_huge_number_is_one_line(run, capsys, line):
    good = (run / "metrics.jsonl").read_bytes().splitlines()
    (run / "metrics.jsonl").write_bytes(b"\n".join([good[0], line, good[1]]) + b"\n")
    with pytest.raises(TinySRError, match=r"metrics.jsonl: line 2(?: is not valid JSON|: 'val_psnr' is not a usable)"):
        runs.read_metrics(run)
    assert main(["report", str(run), "--out", str(run.parent / "report"), "--no-visual"]) == 2
    assert "metrics.jsonl: line 2" in _error_line(capsys)
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 2
    assert "metrics.jsonl: line 2" in _error_line(capsys)


def test_a_torn_non_utf8_last_line_is_dropped_with_a_warning(run):
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 6, "val_psnr": 3\xe2\x82')  # a kill in the middle of a multi-byte character
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        assert [row["step"] for row in runs.read_metrics(run)] == [2, 4]


# ------------------------------------------------------------------------------ case 11: threads, ignored edits


def test_config_json_records_the_threads_and_a_resume_keeps_them(run, capsys, monkeypatch):
    config = json.loads((run / "config.json").read_text())
    assert config["threads"] == 1
    seen = []
    real_train = loop.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_train(*args, **kwargs)

    monkeypatch.setattr("tinysr.cli.train.train", spy)
    torch.set_num_threads(2)  # the process default a resume without --threads used to train with
    try:
        _ok(["train", "--resume", str(run), "--steps", "6", "--no-progress"], capsys)
        assert seen == [1]
        assert main(["train", "--resume", str(run), "--steps", "8", "--threads", "2", "--no-progress"]) == 2
        assert _error_line(capsys) == (f"tinysr: error: {run}: its config.json disagrees with the given options: "
                                       "threads: 1 in the run, 2 given; use --force to override")
        _ok(["train", "--resume", str(run), "--steps", "8", "--threads", "2", "--force", "--no-progress"], capsys)
        assert seen == [1, 2] and json.loads((run / "config.json").read_text())["threads"] == 2
    finally:
        torch.set_num_threads(1)


def test_a_run_without_recorded_threads_resumes_and_records_them(run):
    """Runs written before config.json recorded the threads resume as before, and record them from then on."""
    config = json.loads((run / "config.json").read_text())
    del config["threads"]
    (run / "config.json").write_text(json.dumps(config))
    state = torch.load(run / "last.pt", weights_only=True)
    del state[runs.TRAINED_WITH], state[runs.INTEGRITY]
    runs.save_last(run, state)
    assert main(["train", "--resume", str(run), "--steps", "6", "--threads", "1", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["threads"] == 1


@pytest.mark.parametrize("key, value", [("learning_rate", 0.001), ("adam_eps", 1e-6), ("lr_gamma", 0.1),
                                        ("adam_beta1", 0.5), ("eval_every", 1)])
def test_an_edit_a_resume_would_ignore_is_refused(run, capsys, key, value):
    _edit(run, "train", key, value)
    before = _files(run)
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 2
    stored = json.loads(json.dumps(getattr(loop.TrainConfig(steps=4, eval_every=2, patch=16, batch_size=2), key)))
    assert _error_line(capsys) == (f"tinysr: error: {run / 'config.json'}: train.{key}: {stored!r} in last.pt, "
                                   f"{value!r} now: edited after last.pt was written (a resume would not apply it as "
                                   "the record says); restore it, or give --force to continue with the new value")
    assert _files(run) == before


def test_a_forced_learning_rate_takes_effect(run):
    _edit(run, "train", "learning_rate", 0.001)
    assert main(["train", "--resume", str(run), "--steps", "6", "--force", "--no-progress"]) == 0
    rows = runs.read_metrics(run)
    assert [r["step"] for r in rows] == [2, 4, 6] and rows[-1]["learning_rate"] == 0.001  # not last.pt's 1e-4
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved[runs.TRAINED_WITH]["train"]["learning_rate"] == 0.001


@pytest.mark.parametrize("section, key, value, what", [("model", "n_feats", 8, "model.n_feats: 4 in last.pt, 8 now"),
                                                       ("train", "seed", 3, "train.seed: 0 in last.pt, 3 now")])
def test_what_last_pt_decides_cannot_change_even_with_force(run, capsys, section, key, value, what):
    _edit(run, section, key, value)
    if key == "seed":
        _edit(run, None, "seed", value)
    before = _files(run)
    assert main(["train", "--resume", str(run), "--steps", "6", "--force", "--no-progress"]) == 2
    assert _error_line(capsys) == (f"tinysr: error: {run}: a resume cannot change {what} (last.pt continues those "
                                   "weights and random streams); restore config.json, or start a new run (--init "
                                   f"{run} starts from its weights)")
    assert _files(run) == before
