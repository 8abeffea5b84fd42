"""Training: one step learns, resume is exact, faults (NaN, Ctrl-C, SIGKILL, bad input, full disk) lose nothing."""

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinysr import atomic
from tinysr.models import weights as checkpoint
from tinysr.train import runs
from tinysr.train import cuda as step_mod
from tinysr.train import loop as train_mod
from tinysr.cli import main
from tinysr.data.cache import load_pairs
from tinysr.data.folder import image_folder
from tinysr.errors import TinySRError
from tinysr.models import create_model
from tinysr.train.config import DataConfig, RunConfig
from tinysr.train.cuda import train_step
from tinysr.train.loop import TrainConfig, learning_rate_factor, train, validate

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A smooth gradient with a little noise: learnable structure, 64x64 RGB uint8."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([128 + 100 * np.sin(6 * x + 3 * y), 255 * x * y, 128 + 90 * np.cos(5 * y)], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, count in (("train", 3), ("val", 2), ("empty", 0)):
        (root / name).mkdir()
        for i in range(count):
            Image.fromarray(_photo(rng)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pairs(folders, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return tuple(load_pairs(image_folder(folders / n), scale=2, cache_dir=cache, progress=False)
                 for n in ("train", "val"))


# The step schedule (halving at 15) spans the resume point; a cosine run to 20 steps would differ from one to 40.
CONFIG = TrainConfig(steps=40, batch_size=4, patch=16, learning_rate=1e-3, lr_step=15, eval_every=10)


def _run(tmp_path, pairs, name="run", *, steps=40, resume=False, config=CONFIG):
    run = tmp_path / name
    cfg = RunConfig(model={}, train=TrainConfig(steps=steps), data=DataConfig(train=(), val="", scale=2),
                    protocol="study", seed=0)
    if not resume:
        runs.open_run(run, cfg)
    torch.manual_seed(0)
    model = create_model("edsr-tiny")
    config = TrainConfig(**{**config.__dict__, "steps": steps})
    result = train(model, *pairs, config=config, run_dir=run, resume=resume, progress=False)
    return model, result


def test_train_step_overfits_one_batch():
    torch.manual_seed(0)
    model = create_model("edsr", n_blocks=1, n_feats=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    lr = torch.rand(2, 3, 8, 8) * 255
    hr = torch.nn.functional.interpolate(lr, scale_factor=2, mode="nearest")
    losses = [train_step(model, lr, hr, optimizer) for _ in range(60)]
    assert losses[-1] < losses[0] / 10, losses[::10]  # 62.5 -> 3.1 when pinned (x20)


def test_train_step_returns_a_nan_loss_unread_for_the_loop_to_stop_on():
    """The one step never reads its loss (no host sync on CUDA); the loop does, and stops: see
    test_nan_loss_fails_the_run_and_keeps_the_checkpoints."""
    model = create_model("edsr-tiny")
    lr = torch.full((1, 3, 4, 4), float("nan"))
    loss = train_step(model, lr, torch.zeros(1, 3, 8, 8), torch.optim.Adam(model.parameters()))
    assert torch.is_tensor(loss) and loss.shape == () and math.isnan(loss)


def test_learning_rate_schedules():
    step = TrainConfig(lr_step=100)
    assert [learning_rate_factor(s, step) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    cosine = TrainConfig(steps=100, schedule="cosine")
    assert [learning_rate_factor(s, cosine) for s in (0, 50, 100, 150)] == [1.0, pytest.approx(0.5), 0.0, 0.0]
    assert TrainConfig().learning_rate == 1e-4 and TrainConfig().lr_step == 200_000  # the study's recipe


def test_config_rejects_impossible_values():
    with pytest.raises(TinySRError, match="^batch_size must be >= 1, got 0$"):
        TrainConfig(batch_size=0)
    with pytest.raises(TinySRError, match="^unknown schedule 'linear'"):
        TrainConfig(schedule="linear")


def test_validate_is_the_mean_of_measure_over_whole_images(pairs):
    model = create_model("edsr-tiny")
    psnr, ssim = validate(model, pairs[1], protocol="study")
    psnr_first, _ = validate(model, pairs[1], protocol="study", limit=1)
    from tinysr.models.window import upscale_array
    from tinysr.metrics import PROTOCOLS, measure

    rows = [measure(upscale_array(model, lr), hr, scale=2, protocol=PROTOCOLS["study"])
            for lr, hr in zip(pairs[1].lr, pairs[1].hr)]
    assert psnr == np.mean([r[0] for r in rows]) and ssim == np.mean([r[1] for r in rows])
    assert psnr_first == rows[0][0]


def test_run_folder_and_resume_give_identical_weights(tmp_path, pairs):
    straight, result = _run(tmp_path, pairs, "straight", steps=40)
    _run(tmp_path, pairs, "split", steps=20)
    resumed, _ = _run(tmp_path, pairs, "split", steps=40, resume=True)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in straight.state_dict().items())
    rows = [runs.read_metrics(tmp_path / n) for n in ("straight", "split")]
    assert [r["step"] for r in rows[0]] == [10, 20, 30, 40]
    for key in ("step", "train_loss", "val_psnr", "val_ssim", "learning_rate"):
        assert [r[key] for r in rows[0]] == [r[key] for r in rows[1]]
    assert result.best_psnr == max(r["val_psnr"] for r in rows[0]) > rows[0][0]["val_psnr"]
    status = json.loads((tmp_path / "split" / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == status["steps"] == 40
    best, meta = checkpoint.load_model(tmp_path / "straight" / "best.safetensors")
    assert (meta["step"], meta["val_psnr"], meta["protocol"]) == (result.best_step, result.best_psnr, "study")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_saves_a_step_exact_checkpoint(tmp_path, pairs, monkeypatch, signum):
    straight, _ = _run(tmp_path, pairs, "straight", steps=40)
    calls = []

    def step_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        loss = train_step(*args, **kwargs)
        if len(calls) == 13:
            os.kill(os.getpid(), signum)  # arrives mid-step: deferred to the step's end
        return loss

    monkeypatch.setattr(step_mod, "train_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, pairs, "cut", steps=40)
    status = json.loads((tmp_path / "cut" / "status.json").read_text())
    assert (status["state"], status["step"]) == ("interrupted", 13)
    monkeypatch.setattr(step_mod, "train_step", train_step)
    resumed, _ = _run(tmp_path, pairs, "cut", steps=40, resume=True)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in straight.state_dict().items())


def test_nan_loss_fails_the_run_and_keeps_the_checkpoints(tmp_path, pairs, monkeypatch):
    _run(tmp_path, pairs, steps=20)
    run = tmp_path / "run"
    kept = {n: (run / n).read_bytes() for n in ("best.safetensors", "last.pt")}
    monkeypatch.setattr(step_mod, "train_step", lambda *a, **k: torch.tensor(float("nan")))
    with pytest.raises(TinySRError) as err:
        _run(tmp_path, pairs, steps=40, resume=True)
    assert str(err.value) == (f"{run}: loss is nan at step 21; stopped, keeping the checkpoints of step 20 "
                              "(try a lower --learning-rate)")
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    assert kept == {n: (run / n).read_bytes() for n in kept}


# ---------------------------------------------------------------- the command line
def _argv(folders, run, *extra):
    return ["train", "--model", "edsr-tiny", "--train-data", str(folders / "train"), "--val-data",
            str(folders / "val"), "--out", str(run), "--steps", "20", "--eval-every", "10", "--patch", "16",
            "--batch-size", "4", "--threads", "1", "--no-progress", *extra]


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_sigkill_while_writing_a_checkpoint_then_resume(tmp_path, folders):
    run = tmp_path / "run"
    env = os.environ | {"TINYSR_CACHE": str(tmp_path / "cache"), runs.SLOW_CHECKPOINT_HOOK: "20:60",
                        "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "tinysr", *_argv(folders, run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # the step-20 checkpoint is written, not yet renamed; last.pt must exist first, or the temporary file seen could
    # be step 10's, which lives only for a moment before its own rename
    while not ((run / "last.pt").exists() and list(run.glob(".last.pt.*.tmp"))):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the slow checkpoint never started"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 10  # the previous checkpoint, intact
    assert main(["train", "--resume", str(run), "--threads", "1", "--no-progress"]) == 0
    assert [r["step"] for r in runs.read_metrics(run)] == [10, 20]
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, folders, capsys, monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(_argv(folders, run)) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    assert main(["train", "--resume", str(folders)]) == 2
    assert _error_line(capsys) == f"tinysr: error: {folders}: not a tinysr run folder (no config.json)"
    assert main(["train", "--resume", str(run), "--learning-rate", "0.01"]) == 2
    assert _error_line(capsys) == (f"tinysr: error: {run}: its config.json disagrees with the given options: "
                                   "train.learning_rate: 0.0001 in the run, 0.01 given; use --force to override")
    assert main(_argv(folders, run)) == 2
    assert "already exists (a tinysr run); use --resume" in _error_line(capsys)
    assert main(_argv(folders, tmp_path / "new", "--val-data", str(folders / "empty"))) == 2
    assert _error_line(capsys).startswith(f"tinysr: error: {folders / 'empty'}: no images (")
    with pytest.raises(SystemExit) as exit_:
        main(_argv(folders, tmp_path / "new", "--batch-size", "0"))
    assert exit_.value.code == 2
    assert _error_line(capsys) == "tinysr train: error: argument --batch-size: must be >= 1, got 0"
    assert not (tmp_path / "new").exists()
    assert before == {p.name: p.read_bytes() for p in run.iterdir()}


def test_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(tmp_path, folders, capsys,
                                                                              monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(_argv(folders, run)) == 0
    last = (run / "last.pt").read_bytes()
    real = atomic.atomic_write_bytes

    def full_disk(path, data, **kwargs):
        if Path(path).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, **kwargs)

    monkeypatch.setattr(atomic, "atomic_write_bytes", full_disk)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "30", "--no-progress"]) == 2
    assert _error_line(capsys) == f"tinysr: error: cannot write {run}/last.pt: No space left on device"
    assert (run / "last.pt").read_bytes() == last
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 20


def test_checkpoint_state_takes_a_device_loss_sum_as_a_float(tmp_path):
    # The fast path sums losses as (grad-carrying) tensors; an interrupt must still write a weights-only last.pt.
    model = create_model("edsr-tiny")
    optimizer, scheduler = train_mod.make_optimizer(model, CONFIG)
    state = train_mod.LoopState(step=3, loss_sum=torch.tensor(3.0, requires_grad=True) * 2, loss_count=3)
    sampler = type("Sampler", (), {"state_dict": lambda self: {"batches_drawn": 3}})()
    runs.save_last(tmp_path, train_mod._checkpoint_state(model, optimizer, scheduler, sampler, state))
    loop = runs.load_last(tmp_path)["loop"]
    assert (loop["step"], loop["loss_sum"], loop["loss_count"]) == (3, 6.0, 3)


def test_tiny_preset_fields_from_the_command_line(tmp_path, folders, capsys, monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    argv = _argv(folders, run, "--layers", "5", "--feats", "5", "--expand", "2", "--steps", "2", "--eval-every", "2")
    argv[argv.index("edsr-tiny")] = "tiny-1k-x2"
    assert main(argv) == 0
    capsys.readouterr()  # 2 steps do not beat bicubic: a warning line, tested below
    model = runs.read_config(run)["model"]
    assert (model["family"], model["n_layers"], model["n_feats"], model["expand"]) == ("tiny", 5, 5, 2)
    assert main(_argv(folders, tmp_path / "edsr", "--layers", "3")) == 2  # EDSR has blocks, not layers
    assert "model 'edsr-tiny'" in _error_line(capsys) and not (tmp_path / "edsr").exists()


def test_bicubic_baseline_is_tinysr_eval_s_bicubic(data_dir, tmp_path):
    from tinysr.train.loop import bicubic_baseline

    pairs = load_pairs(image_folder(data_dir / "Set5"), scale=2, cache_dir=tmp_path, progress=False)
    assert round(bicubic_baseline(pairs, protocol="standard"), 2) == 33.68  # as `tinysr eval --model bicubic`


def test_a_run_that_ends_below_bicubic_says_so(tmp_path, folders, capsys, monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    assert main(_argv(folders, tmp_path / "run")) == 0  # 20 steps of a fresh net: far below bicubic
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tinysr: warning: {tmp_path / 'run'}: best val PSNR ")
    assert "does not beat bicubic's" in err[0] and "quick recipe" in err[0]


def test_init_starts_a_new_run_from_bundled_weights_under_a_codec_degradation(tmp_path, folders, monkeypatch):
    from tinysr.infer.load import load_network

    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    argv = ["train", "--init", "tiny-1k-x2", "--degradation", "bicubic+jpeg30-95", "--train-data",
            str(folders / "train"), "--val-data", str(folders / "val"), "--out", str(run), "--steps", "1",
            "--eval-every", "1", "--patch", "16", "--batch-size", "2", "--learning-rate", "1e-30", "--threads", "1",
            "--no-progress"]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["init"] == "tiny-1k-x2" and config["data"]["degradation"] == "bicubic+jpeg30-95"
    assert (config["model"]["n_feats"], config["model"]["n_layers"], config["model"]["channels"]) == (6, 4, "y")
    init = load_network("tiny-1k-x2", scale=2)[0].to_torch().state_dict()
    trained, _ = checkpoint.load_model(run / runs.RUN_BEST)
    for name, value in trained.state_dict().items():  # a learning rate of 1e-30 leaves the start unchanged
        torch.testing.assert_close(value, init[name])


def test_max_pixels_is_an_option_of_train(tmp_path, folders, capsys, monkeypatch):
    """The decompression-bomb error points to --max-pixels; train has it now (it used to point to nothing)."""
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    assert main([*_argv(folders, tmp_path / "run"), "--max-pixels", "100"]) == 2  # 64x64 photos, over 100 pixels
    warning, error = capsys.readouterr().err.strip().splitlines()  # the skipped files, then why the run stops
    assert "0.png (64x64 = 4,096 pixels exceeds the decompression-bomb limit of 100" in warning
    assert "CLI --max-pixels" in warning and error == "tinysr: error: train: none of its 3 image files could be decoded"
    assert main([*_argv(folders, tmp_path / "run2"), "--max-pixels", "5000"]) == 0
