"""`tinysr.train.start`: a run is a function of its config.json, whichever entry point starts it and whatever ran
before it in the process (issue 17: the experiment runner neither seeded nor set determinism)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import smooth_pngs
from safetensors import safe_open
from safetensors.torch import load_file

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.train.config import RunConfig, TrainConfig

#: TrainConfig fields that `tinysr train` has no option for (they keep their defaults in every preset).
NO_OPTION = ("adam_beta1", "adam_beta2", "adam_eps", "augment")


def _train_argv(config: dict, *, out: Path) -> list[str]:
    """`tinysr train` options that give a run with `config` (a row's config.json)."""
    model, data = config["model"], config["data"]
    assert model["family"] == "edsr" and all(config["train"][k] == getattr(TrainConfig(), k) for k in NO_OPTION)
    argv = ["train", "--model", "edsr", "--blocks", str(model["n_blocks"]), "--feats", str(model["n_feats"]),
            "--scale", str(model["scale"]), "--res-scale", str(model["res_scale"]), "--train-data", *data["train"],
            "--val-data", data["val"], "--degradation", data["degradation"], "--out", str(out)]
    for name, value in config["train"].items():  # the defaults are left out (--revive-every 0 is no option)
        if name not in NO_OPTION and value != getattr(TrainConfig(), name):
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def test_a_row_gives_the_same_weights_alone_after_another_row_and_through_tinysr_train(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    train, val = smooth_pngs(tmp_path / "train", 3, 0, coarse=8, size=104), smooth_pngs(tmp_path / "val", 2, 1)
    common = ["--data", str(train), "--val-data", str(val), "--steps", "20", "--eval-every", "10",
              "--device", "cpu", "--threads", "1", "--polish-steps", "0"]
    torch.manual_seed(1234)  # whatever state the process is in must not matter
    assert main(["experiment", "run", "table4", "--only", "4", "--out", str(tmp_path / "alone"), *common]) == 0
    assert main(["experiment", "run", "table4", "--only", "2,4", "--out", str(tmp_path / "after"), *common]) == 0
    alone, after = (tmp_path / "alone" / "table4" / "b0-f4"), (tmp_path / "after" / "table4" / "b0-f4")
    config = json.loads((alone / "config.json").read_text())
    cli = tmp_path / "cli"
    assert main([*_train_argv(config, out=cli), "--device", "cpu", "--threads", "1", "--no-progress"]) == 0
    configs = [json.loads((run / "config.json").read_text()) for run in (alone, after, cli)]
    assert configs[0] == configs[1] == configs[2]
    # Tensors and metadata, not file bytes: safetensors writes the metadata entries in a varying order.
    weights = [load_file(run / "best.safetensors") for run in (alone, after, cli)]
    assert all(torch.equal(w[k], weights[0][k]) for w in weights[1:] for k in weights[0])
    metadata = [safe_open(run / "best.safetensors", "pt").metadata() for run in (alone, after, cli)]
    assert metadata[0] == metadata[1] == metadata[2]
    assert [json.loads(line)["val_psnr"] for line in (alone / "metrics.jsonl").read_text().splitlines()] == \
        [json.loads(line)["val_psnr"] for line in (cli / "metrics.jsonl").read_text().splitlines()]


def test_run_config_round_trips_config_json_and_names_a_bad_field(tmp_path):
    raw = {"tinysr_version": "0.1", "model": {"family": "edsr", "n_blocks": 0}, "train": {"steps": 7},
           "data": {"train": ["/t"], "val": None, "scale": 2, "degradation": "bicubic", "val_split": 1,
                    "val_names": ["a"], "split_seed": 3, "hr_downscale": 2}, "protocol": "study", "seed": 0}
    config = RunConfig.from_dict(raw, source="RUN/config.json")
    assert config.train.steps == 7 and config.data.val_names == ("a",)
    assert config.to_dict() == raw | {"train": config.to_dict()["train"]} and config.to_dict()["train"]["steps"] == 7
    for bad, field in (({"train": {"stepz": 7}}, "unknown field train.stepz"),
                       ({"data": {"train": ["/t"], "scale": 2}}, "missing field data.val"),
                       ({"train": {"steps": 0}}, "steps must be >= 1")):
        with pytest.raises(TinySRError, match=f"^RUN/config.json: {field}") as err:
            RunConfig.from_dict(raw | bad, source="RUN/config.json")
        assert "\n" not in str(err.value)
