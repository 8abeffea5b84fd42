"""Polish: the objective is the protocol's PSNR, L-BFGS raises it, the best step on validation is kept, and the
command writes a run folder (or refuses in one line, writing nothing)."""

import json

import numpy as np
import pytest
import torch
from helpers import random_edsr, smooth_pngs

from tinysr.train import runs
from tinysr.models.weights import load_model, save_weights
from tinysr.cli import main
from tinysr.data.cache import load_pairs
from tinysr.data.folder import image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler
from tinysr.models.window import upscale_array
from tinysr.metrics import PROTOCOLS, Protocol, prepare_pair, psnr
from tinysr.models import count_params, create_model, deployed
from tinysr.models.tiny import deployed_params
from tinysr.train.polish import PolishConfig, mean_psnr, polish, whole_images
from tinysr.train.start import load_data
from tinysr.train.loop import validate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("polish")
    folder = smooth_pngs(root / "imgs", 4, seed=3, size=40)
    return load_pairs(image_folder(folder), scale=2, cache_dir=root / "cache", progress=False)


def _unrounded(protocol: Protocol) -> Protocol:
    return Protocol(f"{protocol.name}-unrounded", channel=protocol.channel, crop_border=protocol.crop_border,
                    quantize=False)


@pytest.mark.parametrize("name,protocol", [("tiny-1k-x2", "standard"), ("edsr-tiny", "study")])
def test_objective_is_the_protocols_unrounded_psnr(pairs, name, protocol):
    model = deployed(random_edsr(name, std=0.02, seed=1))
    expected = np.mean([psnr(*prepare_pair(upscale_array(model, np.asarray(lr)), np.asarray(hr), scale=2,
                                           protocol=_unrounded(PROTOCOLS[protocol])))
                        for lr, hr in zip(pairs.lr, pairs.hr)])
    got = mean_psnr(model, whole_images(pairs), scale=2, protocol=PROTOCOLS[protocol])
    assert got == pytest.approx(expected, abs=2e-4)


def test_the_gradient_is_that_of_minus_the_objective(pairs):
    model = deployed(random_edsr("tiny-1k-x2", std=0.02, seed=1)).double()
    images = [(lr.double(), hr.double()) for lr, hr in whole_images(pairs)]
    bias = model.convs[-1].bias
    mean_psnr(model, images, scale=2, protocol=PROTOCOLS["standard"], backward=True)
    grad, eps = float(bias.grad[0]), 1e-5

    def at(delta: float) -> float:
        with torch.no_grad():
            bias[0] += delta
            value = mean_psnr(model, images, scale=2, protocol=PROTOCOLS["standard"])
            bias[0] -= delta
        return value

    assert grad == pytest.approx(-(at(eps) - at(-eps)) / (2 * eps), rel=1e-4)


def test_polish_raises_the_objective_from_the_bicubic_start(pairs):
    torch.manual_seed(0)
    model = deployed(create_model("tiny-1k-x2"))  # zero residual: exactly the bicubic anchor
    start = mean_psnr(model, whole_images(pairs), scale=2, protocol=PROTOCOLS["standard"])
    result = polish(model, pairs, pairs, config=PolishConfig(steps=2), validate=lambda m: (0.0, 0.0))
    end = mean_psnr(model, whole_images(pairs), scale=2, protocol=PROTOCOLS["standard"])
    bicubic = np.mean([psnr(*prepare_pair(bicubic_upscaler(2)(np.asarray(lr)), np.asarray(hr), scale=2,
                                          protocol=_unrounded(PROTOCOLS["standard"])))
                       for lr, hr in zip(pairs.lr, pairs.hr)])
    assert start == pytest.approx(bicubic, abs=2e-4) and start == pytest.approx(51.843, abs=1e-3)
    assert result.best_step == 0 and result.train_psnr == start  # validation never improved: step 0 is kept
    assert end == start  # ... and its weights restored
    model2 = deployed(create_model("tiny-1k-x2"))
    scores = iter([(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)])  # each step better on validation
    result = polish(model2, pairs, pairs, config=PolishConfig(steps=2), validate=lambda m: next(scores))
    assert result.best_step == 2 and result.train_psnr > start + 1.0


@pytest.mark.parametrize("name", ["edsr-tiny", "tiny-1k-x2"])
def test_a_net_that_changes_colour_is_not_polished_on_luma(pairs, name):
    model = deployed(create_model(name, **({"channels": "rgb"} if name.startswith("tiny") else {})))
    with pytest.raises(TinySRError) as err:
        polish(model, pairs, pairs, config=PolishConfig(steps=1, protocol="standard"), validate=lambda m: (0.0, 0.0))
    assert "luma only" in str(err.value) and "\n" not in str(err.value)


def test_polish_keeps_the_weights_of_the_best_validated_step(pairs):
    torch.manual_seed(0)
    model = deployed(random_edsr("tiny-1k-x2", std=0.05, seed=2))
    scores, seen = iter([30.0, 31.0, 30.5, 29.0]), []

    def validate(net):
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        return next(scores), 0.9

    result = polish(model, pairs, pairs, config=PolishConfig(steps=3), validate=validate)
    assert (result.best_step, result.best_psnr, result.start_psnr) == (1, 31.0, 30.0)
    assert not torch.equal(seen[1]["convs.0.weight"], seen[0]["convs.0.weight"])  # step 1 moved the weights
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[1][key]), key


# ---------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("polish-run")
    folder = smooth_pngs(root / "imgs", 6, seed=0, size=48)
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSR_CACHE", str(root / "cache"))
        assert main(["train", "--model", "tiny-1k-x2", "--train-data", str(folder), "--val-split", "2",
                     "--steps", "20", "--eval-every", "10", "--patch", "12", "--batch-size", "4",
                     "--learning-rate", "2e-3", "--schedule", "cosine", "--protocol", "standard", "--loss", "l1-y",
                     "--out", str(run), "--threads", "1", "--no-progress"]) == 0
    return root, run


def test_polish_writes_a_run_folder_of_the_deployed_net(trained_run, tmp_path, monkeypatch, capsys):
    root, run = trained_run
    monkeypatch.setenv("TINYSR_CACHE", str(root / "cache"))
    out = tmp_path / "polished"
    assert main(["polish", str(run), "--out", str(out), "--steps", "2", "--threads", "1", "--no-progress"]) == 0
    rows = runs.read_metrics(out)
    assert [r["step"] for r in rows] == [0, 1, 2]
    _, meta = load_model(run / runs.RUN_BEST)
    assert rows[0]["val_psnr"] == pytest.approx(meta["val_psnr"], abs=1e-9)  # step 0 is the source net
    assert rows[1]["train_psnr"] > rows[0]["train_psnr"]
    model, best = load_model(out / runs.RUN_BEST)
    assert model.config.collapsed and count_params(model) == deployed_params(model.config) == 940
    assert best["val_psnr"] == max(r["val_psnr"] for r in rows)
    _, val_pairs, _ = load_data(runs.read_run_config(run), progress=False)
    assert validate(model, val_pairs, protocol="standard")[0] == pytest.approx(best["val_psnr"], abs=1e-9)  # round trip
    config = json.loads((out / "config.json").read_text())
    assert config["polish"] == {"steps": 2, "evals_per_step": 10, "history": 20, "protocol": "standard",
                                "source_run": str(run.resolve()), "source_step": meta["step"],
                                "source_val_psnr": meta["val_psnr"]}
    assert config["data"]["val_names"] == json.loads((run / "config.json").read_text())["data"]["val_names"]
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    assert "val PSNR" in capsys.readouterr().out


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("tinysr: error:"), err
    for needle in needles:
        assert needle in err, err


def test_polish_refuses_bad_input_in_one_line_and_writes_nothing(trained_run, tmp_path, monkeypatch, capsys):
    root, run = trained_run
    monkeypatch.setenv("TINYSR_CACHE", str(root / "cache"))
    out = tmp_path / "out"
    assert main(["polish", str(tmp_path / "nope"), "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "nope", "not a tinysr run folder")
    assert main(["polish", str(run), "--out", str(run), "--no-progress"]) == 2
    _one_line_error(capsys, "--out")

    empty = tmp_path / "unvalidated"
    empty.mkdir()
    (empty / "config.json").write_text((run / "config.json").read_text())
    assert main(["polish", str(empty), "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "best.safetensors")

    rgb = tmp_path / "rgb"  # a run whose net changes colour, validated on luma
    rgb.mkdir()
    (rgb / "config.json").write_text((run / "config.json").read_text())
    save_weights(rgb / "best.safetensors", create_model("tiny-1k-x2", channels="rgb"), meta={"step": 1})
    assert main(["polish", str(rgb), "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "luma only")
    assert not out.exists()

    moved = tmp_path / "moved"
    moved.mkdir()
    config = json.loads((run / "config.json").read_text())
    config["data"]["val_names"] = ["img0", "img5"]  # not what the folders give now
    (moved / "config.json").write_text(json.dumps(config))
    (moved / "best.safetensors").write_bytes((run / "best.safetensors").read_bytes())
    assert main(["polish", str(moved), "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "held-out images", "img0, img5")
    assert not out.exists()

    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["polish", str(run), "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "already exists", "--force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    with pytest.raises(SystemExit) as exit_:
        main(["polish", str(run), "--out", str(tmp_path / "x"), "--steps", "0"])
    assert exit_.value.code == 2
    _one_line_error_argparse = capsys.readouterr().err.strip()
    assert "--steps" in _one_line_error_argparse and _one_line_error_argparse.count("\n") == 0


@pytest.mark.parametrize("raised,code,state", [(KeyboardInterrupt, 130, "interrupted"), (RuntimeError, None, "failed")])
def test_a_stopped_polish_says_so_and_keeps_the_best_so_far(trained_run, tmp_path, monkeypatch, capsys, raised,
                                                           code, state):
    import tinysr.train.polish as polish_module

    root, run = trained_run
    monkeypatch.setenv("TINYSR_CACHE", str(root / "cache"))
    real_step, calls = polish_module.polish_step, []

    def stop_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise raised("stop")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(polish_module, "polish_step", stop_on_second)
    out = tmp_path / "stopped"
    argv = ["polish", str(run), "--out", str(out), "--steps", "4", "--threads", "1", "--no-progress"]
    if code is None:
        with pytest.raises(raised):
            main(argv)
    else:
        assert main(argv) == code
    status = json.loads((out / "status.json").read_text())
    assert (status["state"], status["step"]) == (state, 1)  # not "finished": the folder does not look complete
    assert [r["step"] for r in runs.read_metrics(out)] == [0, 1]
    _, meta = load_model(out / runs.RUN_BEST)
    assert meta["val_psnr"] == max(r["val_psnr"] for r in runs.read_metrics(out))
