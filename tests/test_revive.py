"""tinysr.train.revive and the training options around it: dead ReLU units get fresh weights, the output does not move."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysr.train import runs
from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError
from tinysr.models import create_model
from tinysr.models.tiny import TinyConfig, TinySR
from tinysr.train.revive import (PROBE_SIDE, REVIVED_BIAS, check_revivable, hidden_activity, probe_batch,
                           revive_dead_units)
from tinysr.train import cuda as step_mod
from tinysr.train.config import DataConfig, RunConfig
from tinysr.train.cuda import train_step
from tinysr.train.loop import REVIVE_UNTIL, TrainConfig, loss_name_at, revive_due, train


def _net(seed: int = 0) -> TinySR:
    torch.manual_seed(seed)
    net = TinySR(TinyConfig(scale=2, n_feats=4, n_layers=4, kernel_size=3))
    with torch.no_grad():
        for conv in net.convs:  # the last conv starts at zero (the anchor): give the residual something to do
            conv.weight.normal_(0, 0.3)
        net.convs[1].bias[2] = -100.0  # unit 2 of the 2nd layer never fires
        net.convs[0].bias[0] = -100.0  # unit 0 of the 1st layer neither
    return net


def _pairs(hr: list, lr: list) -> PairedImages:
    return PairedImages(names=tuple("abc"[:len(hr)]), hr=hr, lr=lr, scale=2, degradation="bicubic",
                        cache_path=Path("unused"), cache_hit=False)


def _probe() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (2, 3, 12, 12))).float()


def test_revive_keeps_the_output_and_wakes_the_dead_units():
    net, probe = _net(), _probe()
    assert [(r == 0).nonzero().flatten().tolist() for r in hidden_activity(net, probe)] == [[0], [2], []]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(probe).sum().backward()
    optimizer.step()  # fills the Adam moments
    with torch.no_grad():  # undo the step on the dead units so they are still dead
        net.convs[0].bias[0], net.convs[1].bias[2] = -100.0, -100.0
    before = net(probe)
    revived = revive_dead_units(net, optimizer, probe)
    assert revived == [(0, 0), (1, 2)]
    assert torch.allclose(net(probe), before, atol=1e-4, rtol=0)
    assert net.convs[1].bias[2] == REVIVED_BIAS and (net.convs[2].weight[:, 2] == 0).all()
    assert all((r > 0).all() for r in hidden_activity(net, probe)[:2])
    state = optimizer.state[net.convs[2].weight]
    assert (state["exp_avg"][:, 2] == 0).all() and (state["exp_avg_sq"][:, 2] == 0).all()
    assert (state["exp_avg_sq"][:, 1] != 0).any()  # the live units keep theirs
    assert revive_dead_units(net, optimizer, probe) == []  # nothing dead now: nothing changes


@pytest.mark.parametrize("model", [lambda: create_model("edsr-tiny"),
                                   lambda: TinySR(TinyConfig(expand=4)), lambda: TinySR(TinyConfig(act="prelu"))])
def test_only_plain_relu_tiny_nets_can_be_revived(model):
    with pytest.raises(TinySRError, match="revive_every needs a tiny net"):
        check_revivable(model())


def test_probe_is_central_crops_of_the_first_training_images():
    lrs = [np.full((60, 70, 3), i, np.uint8) for i in range(3)]
    lrs[1][30, 35] = 255  # the centre of the second image
    pairs = _pairs([np.zeros((120, 140, 3), np.uint8)] * 3, lrs)
    probe = probe_batch(pairs)
    assert probe.shape == (3, 3, PROBE_SIDE, PROBE_SIDE) and probe.dtype == torch.float32
    assert probe[2].unique().tolist() == [2.0] and probe[1].max() == 255


def test_config_and_schedule_of_the_final_loss_and_revival():
    config = TrainConfig(steps=100, loss="l1-y", final_loss="mse-y", final_fraction=0.1, revive_every=20)
    assert [loss_name_at(s, config) for s in (0, 89, 90, 99)] == ["l1-y", "l1-y", "mse-y", "mse-y"]
    assert [s for s in range(1, 101) if revive_due(s, config)] == [20, 40, 60] and REVIVE_UNTIL == 0.75
    assert loss_name_at(99, TrainConfig(steps=100)) == "l1"
    for bad in (dict(final_fraction=0.1), dict(final_loss="mse-y"), dict(final_loss="mse-y", final_fraction=1.5),
                dict(final_loss="l2", final_fraction=0.5), dict(revive_every=-1)):
        with pytest.raises(TinySRError, match="final|revive"):
            TrainConfig(steps=100, **bad)


def test_training_with_revival_and_a_final_loss_is_resumable(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(3)]
    train_pairs = _pairs(hr, [h[::2, ::2].copy() for h in hr])
    config = TrainConfig(steps=12, batch_size=2, patch=8, learning_rate=1e-2, eval_every=4, loss="l1-y",
                         final_loss="mse-y", final_fraction=0.5, revive_every=3)  # revivals at 3, 6, 9

    def run(name: str, resume: bool = False) -> TinySR:
        if not resume:
            cfg = RunConfig(model={}, train=TrainConfig(steps=12), data=DataConfig(train=(), val="", scale=2),
                            protocol="study", seed=0)
            runs.open_run(tmp_path / name, cfg)
        net = _net()
        train(net, train_pairs, train_pairs, config=config, run_dir=tmp_path / name, resume=resume, progress=False)
        return net

    straight = run("straight")
    # the units dead from the start get no gradient: only a revival moves their bias off -100
    assert abs(straight.convs[0].bias[0] - REVIVED_BIAS) < 0.5 and abs(straight.convs[1].bias[2] - REVIVED_BIAS) < 0.5
    calls = []

    def ctrl_c_in_step_7(*args, **kwargs):  # deferred to the end of step 7: after its revival, in the final phase
        calls.append(1)
        loss = train_step(*args, **kwargs)
        if len(calls) == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(step_mod, "train_step", ctrl_c_in_step_7)
    with pytest.raises(KeyboardInterrupt):
        run("cut")
    monkeypatch.setattr(step_mod, "train_step", train_step)
    resumed = run("cut", resume=True)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in straight.state_dict().items())
