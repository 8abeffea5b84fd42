"""The compact family (tinysr.families.compact, tinysr.models.compact): presets and their counts, spandrel's keys,
the torch net against the engine's program and the NumPy export, exact tiling, and a few training steps through
`tinysr train --model compact-1k-x2`. spandrel itself: tests/test_spandrel.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinysr.api import load_model, upscale
from tinysr.cli import main
from tinysr.data.degrade import bicubic_uint8
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.export import runtime
from tinysr.export.numpy_export import export_numpy
from tinysr.families import FAMILIES, config_from_dict, config_to_dict
from tinysr.families.compact import BUDGETS, COMPACT_PRESETS, CompactConfig, n_params, shapes
from tinysr.infer.network import network_from_state
from tinysr.metrics import psnr
from tinysr.models import PRESETS, count_params, create_model
from tinysr.models.compact import CompactSR
from tinysr.models.weights import save_weights

from helpers import random_edsr, smooth_pngs

pytestmark = pytest.mark.usefixtures("one_thread")

#: Trainable parameters of each preset (convs and PReLU slopes), as `count_params` counts them.
COUNTS = {"compact-1k-x2": 932, "compact-5k-x2": 4_887, "compact-20k-x2": 18_933,
          "compact-1k-x4": 970, "compact-5k-x4": 4_920, "compact-20k-x4": 18_425}
TOLERANCE = 1e-3  # float32 on 0..255: torch's conv kernels against the engine's matmuls


def random_compact(name: str = "compact-1k-x2", *, std: float = 0.1, seed: int = 0, **overrides) -> CompactSR:
    return random_edsr(name, std=std, seed=seed, **overrides)  # any preset: every parameter from N(0, std)


def _torch_sr(model: CompactSR, lr: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(lr)[None]).numpy()[0]


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    return read_image(data_dir / "Set14" / "baboon.png")[0][:45, :61]


# ---------------------------------------------------------------- the presets

def test_presets_are_registered_with_their_counts():
    assert set(COMPACT_PRESETS) == {f"compact-{b}-x{s}" for b in BUDGETS for s in (2, 4)} == set(COUNTS)
    for name, expected in COUNTS.items():
        config = PRESETS[name]
        assert config == COMPACT_PRESETS[name] and config.family == "compact"
        assert count_params(create_model(name)) == n_params(config) == expected
        assert expected <= BUDGETS[name.split("-")[1]]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_each_preset_is_the_widest_that_fits_its_depth(name):
    """The rule of `families/compact.py`: at the preset's depth, one feature more breaks the budget."""
    config = PRESETS[name]
    wider = CompactConfig(scale=config.scale, n_feats=config.n_feats + 1, n_layers=config.n_layers)
    assert n_params(wider) > BUDGETS[name.split("-")[1]]


def test_the_state_dict_has_spandrels_keys():
    model = create_model("compact-1k-x2")  # 3 convs of 5 features: num_conv 1
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes(model.config) == {
        "body.0.weight": (5, 3, 3, 3), "body.0.bias": (5,), "body.1.weight": (5,),
        "body.2.weight": (5, 5, 3, 3), "body.2.bias": (5,), "body.3.weight": (5,),
        "body.4.weight": (12, 5, 3, 3), "body.4.bias": (12,)}
    assert [type(m).__name__ for m in model.body] == ["Conv2d", "PReLU", "Conv2d", "PReLU", "Conv2d"]
    assert all(p.requires_grad for p in model.parameters()) and not list(model.buffers())


def test_config_round_trip_and_bad_configs():
    config = PRESETS["compact-5k-x4"]
    assert config_to_dict(config) == {"scale": 4, "n_feats": 8, "n_layers": 4, "family": "compact"}
    assert config_from_dict(config_to_dict(config)) == config and config.num_conv == 2
    assert FAMILIES["compact"].config is CompactConfig
    with pytest.raises(TinySRError, match=r"model 'compact': need n_feats >= 1 and n_layers >= 2"):
        create_model("compact", n_layers=1)
    with pytest.raises(TinySRError, match=r"model 'compact-1k-x2': scale must be one of \(2, 3, 4\), got 5"):
        create_model("compact-1k-x2", scale=5)
    with pytest.raises(TinySRError, match=r"expected an NCHW RGB tensor, got shape \(1, 1, 8, 8\)"):
        create_model("compact-1k-x2")(torch.zeros(1, 1, 8, 8))


# ---------------------------------------------------------------- the network

def test_untrained_net_is_nearest_upsampling(photo):
    """The last conv starts at zero: the output is the input repeated over each scale x scale block."""
    model = create_model("compact-5k-x4")
    lr = photo.transpose(2, 0, 1).astype(np.float32)
    assert np.abs(_torch_sr(model, lr) - lr.repeat(4, axis=1).repeat(4, axis=2)).max() < 1e-4


def test_forward_is_srvggnetcompact_on_0_to_1():
    """SRVGGNetCompact.forward (spandrel's, written out here from its arch file) on 0..1, times 255."""
    model = random_compact("compact-5k-x2", std=0.2)
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = x
        for layer in model.body:
            out = layer(out)
        reference = F.pixel_shuffle(out, 2) + F.interpolate(x, scale_factor=2, mode="nearest")
        assert torch.allclose(model(x * 255.0), reference * 255.0, atol=1e-4)


@pytest.mark.parametrize(("name", "scale"), [(n, None) for n in sorted(COUNTS)] + [("compact-5k-x2", 3)])
def test_torch_equals_the_engines_program(name, scale, photo):
    model = random_compact(name, **({"scale": scale} if scale else {}))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    net = network_from_state(model.config, state)
    lr = photo.transpose(2, 0, 1).astype(np.float32)
    sr = net.run(lr)
    s = model.config.scale
    assert sr.shape == (3, 45 * s, 61 * s)
    reference = _torch_sr(model, lr)
    assert np.abs(sr - reference).max() < TOLERANCE
    assert np.abs(reference - lr.repeat(s, axis=1).repeat(s, axis=2)).mean() > 10  # the residual is exercised
    assert net.n_params == count_params(model) and net.receptive_radius() == model.receptive_radius()


@pytest.mark.parametrize(("name", "expected"), [("compact-1k-x4", 2), ("compact-1k-x2", 3), ("compact-5k-x4", 4),
                                                ("compact-20k-x2", 6)])
def test_receptive_radius_is_exact(name, expected):
    """In float64: an LR pixel `radius` columns away moves the output of LR pixel (10, 10); one further does not."""
    model = random_compact(name).double()
    r, s = model.receptive_radius(), model.config.scale
    assert r == expected
    lr = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (1, 3, 21, 21)))
    with torch.no_grad():
        base = model(lr)[0, :, 10 * s:11 * s, 10 * s:11 * s]
        moved = []
        for dx in (r, r + 1, -r, -r - 1):
            bumped = lr.clone()
            bumped[0, :, 10, 10 + dx] += 50
            moved.append(float((model(bumped)[0, :, 10 * s:11 * s, 10 * s:11 * s] - base).abs().max()))
    assert moved[0] > 1e-3 and moved[2] > 1e-3 and moved[1] == 0 and moved[3] == 0


def test_numpy_export_and_weights_file_match_torch(photo, tmp_path):
    """The `.npz` export (torch-free runtime) and a weights file loaded by the engine give torch's output; the
    tiled engine equals the untiled one to the uint8 level."""
    model = random_compact("compact-5k-x4")
    lr = photo.transpose(2, 0, 1).astype(np.float32)
    export_numpy(model, tmp_path / "m.npz")
    loaded = runtime.load(tmp_path / "m.npz")
    assert loaded.config == config_to_dict(model.config)
    assert np.abs(runtime.run(loaded, lr) - _torch_sr(model, lr)).max() < TOLERANCE
    save_weights(tmp_path / "m.safetensors", model)
    net = load_model(tmp_path / "m.safetensors")
    assert net.config == model.config and np.abs(net.run(lr) - _torch_sr(model, lr)).max() < TOLERANCE
    whole = upscale(photo, net)
    tiled = upscale(photo, net, tile=16)
    assert whole.shape == (180, 244, 3) and np.array_equal(whole, tiled)


# ---------------------------------------------------------------- training

def test_a_few_training_steps_through_tinysr_train(tmp_path, monkeypatch, capsys):
    """`tinysr train --model compact-1k-x2`: the run finishes, its best weights are a compact net, and 30 steps
    from nearest upsampling beat nearest upsampling on the held-out images (its PSNR is the untrained net's)."""
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    train, val = smooth_pngs(tmp_path / "train", 4, seed=0), smooth_pngs(tmp_path / "val", 2, seed=1)
    run = tmp_path / "run"
    argv = ["train", "--model", "compact-1k-x2", "--train-data", str(train), "--val-data", str(val), "--out",
            str(run), "--steps", "30", "--eval-every", "30", "--patch", "16", "--batch-size", "4",
            "--learning-rate", "2e-3", "--threads", "1", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"scale": 2, "n_feats": 5, "n_layers": 3, "family": "compact"}
    net = load_model(run)
    assert net.family == "compact" and net.n_params == 932
    assert np.abs(net.arrays["body.4.weight"]).max() > 0  # the zero-initialised last conv has learnt
    hr = read_image(val / "img0.png")[0]
    lr = bicubic_uint8(hr, 2)  # the run's degradation
    nearest = lr.repeat(2, axis=0).repeat(2, axis=1)
    assert psnr(upscale(lr, net), hr) > psnr(nearest, hr)
