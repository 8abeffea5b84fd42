"""tinysr.infer.fused_compact: compact nets (SRVGGNetCompact) as compiled kernels, against the family's program (the
NumPy engine) and the torch net, on Set5; exact tiling; the engine that `upscale` picks for them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.families.compact import COMPACT_PRESETS
from tinysr.infer import fused, fused_compact
from tinysr.infer import upscale as engine
from tinysr.infer.network import Network, network_from_state
from tinysr.infer.program import conv2d
from tinysr.infer.upscale import choose_engine, upscale
from tinysr.models import create_model
from tinysr.models.compact import CompactSR

from helpers import random_edsr

pytest.importorskip("numba", reason="the fused path needs Numba (a core dependency)")
pytestmark = pytest.mark.usefixtures("one_thread")

MAX_LEVELS, MAX_FRACTION = 1, 1e-3  # parity: within 1 grey level on at most 0.1 % of the values
SET5 = ("baby", "bird", "butterfly", "head", "woman")
NAMES = sorted(COMPACT_PRESETS)


@pytest.fixture(scope="module")
def set5(data_dir) -> list[np.ndarray]:
    """Set5's five images, each a 96x83 crop from its centre (odd width: the last tiles are partial)."""
    crops = []
    for name in SET5:
        img = read_image(data_dir / "Set5" / f"{name}.png")[0]
        y, x = img.shape[0] // 2 - 48, img.shape[1] // 2 - 41
        crops.append(np.ascontiguousarray(img[y:y + 96, x:x + 83]))
    return crops


def random_net(name: str, **overrides) -> tuple[CompactSR, Network]:
    """A compact preset with every parameter from N(0, 0.05) (seeded) as a torch net and as the engine's network."""
    model = random_edsr(name, std=0.05, seed=1, **overrides)
    return model, network_from_state(model.config, {k: v.numpy() for k, v in model.state_dict().items()})


def numpy_engine(image: np.ndarray, net: Network, monkeypatch) -> np.ndarray:
    """`upscale` on the NumPy engine (the program), as on the core install without Numba."""
    with monkeypatch.context() as patch:
        patch.setattr(engine, "torch_available", lambda: False)
        assert choose_engine(net, self_ensemble=False, device="cpu", rgb=True, fused=False) == "numpy"
        return upscale(image, net, fused=False)


def assert_parity(a: np.ndarray, b: np.ndarray) -> None:
    diff = np.abs(a.astype(int) - b)
    assert a.shape == b.shape and diff.max() <= MAX_LEVELS and (diff > 0).mean() <= MAX_FRACTION


# ---------------------------------------------------------------- numerics


@pytest.mark.parametrize("name", NAMES)
def test_an_untrained_net_is_nearest_upsampling_exactly(name, set5):
    """A new compact net's last conv is zero: the kernels' x 1/255, + 0, x 255 must give back every input level."""
    net = fused_compact.compact_net(create_model(name))
    s = net.scale
    for lr in set5:
        assert np.array_equal(fused_compact.window(net, lr), lr.repeat(s, axis=0).repeat(s, axis=1))
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(fused_compact.window(net, levels), levels.repeat(s, axis=0).repeat(s, axis=1))


@pytest.mark.parametrize(("name", "overrides"), [(n, {}) for n in NAMES] + [("compact-5k-x2", {"scale": 3})])
def test_matches_the_numpy_engine_and_torch_on_set5(name, overrides, set5, monkeypatch):
    model, net = random_net(name, **overrides)
    s = model.config.scale
    moved = 0.0
    for lr in set5:
        fast = upscale(lr, net)
        assert fast.shape == (96 * s, 83 * s, 3)
        assert np.array_equal(upscale(lr, model), fast)  # the torch module takes the same kernels
        assert_parity(fast, numpy_engine(lr, net, monkeypatch))
        assert_parity(fast, upscale(lr, model, fused=False))  # the torch engine
        moved = max(moved, np.abs(fast.astype(int) - lr.repeat(s, axis=0).repeat(s, axis=1)).mean())
    assert moved > 5  # the residual is exercised, not just the nearest anchor


def test_conv_prelu_kernel_is_the_programs_conv_and_prelu():
    """Every output count the 3x3 kernel blocks differently (1..6, 13): conv + PReLU as the program computes it,
    negative values scaled by their channel's slope; `conv` (ReLU) is `conv_prelu` with slope 0, bit for bit."""
    from tinysr.infer import _fused_kernel as kernel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 9, 11)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    for n_out in (1, 2, 3, 4, 5, 6, 13):
        weight = rng.normal(size=(n_out, 5, 3, 3)).astype(np.float32)
        bias = rng.normal(size=n_out).astype(np.float32)
        slope = rng.uniform(0.05, 0.5, n_out).astype(np.float32)
        reference = conv2d(x, weight, bias, 1)
        reference = np.where(reference >= 0, reference, reference * slope[:, None, None])
        blocked_w, blocked_b = fused.blocked(weight, bias)
        out = np.empty((n_out, 9, 11), np.float32)
        kernel.conv_prelu(padded, blocked_w, blocked_b, True, slope, out)
        assert np.abs(out - reference).max() < 1e-4 and (out < 0).any()
        relu = np.empty_like(out)
        kernel.conv(padded, blocked_w, blocked_b, True, relu)
        kernel.conv_prelu(padded, blocked_w, blocked_b, True, np.zeros(n_out, np.float32), out)
        assert np.array_equal(relu, out) and relu.min() == 0


# ---------------------------------------------------------------- tiling and window sizes


def test_tiled_equals_untiled_bit_for_bit(set5, monkeypatch):
    _, net = random_net("compact-20k-x2")
    lr = set5[2][:50, :47]
    whole = fused_compact.window(fused_compact.compact_net_from_arrays(net.program.config, net.arrays), lr)
    for tile, workers in [(None, 1), (1, 1), (7, 2), (16, 1), (40, 2)]:
        assert np.array_equal(upscale(lr, net, tile=tile, workers=workers), whole), (tile, workers)
    monkeypatch.setattr(engine, "AUTO_TILE", 16)  # the default splits a large image over the cores: exactly
    assert np.array_equal(upscale(lr, net, workers=2), whole)


def test_thin_images_and_rgba_run_on_the_kernels(set5, monkeypatch):
    """No bicubic mirror: 1-pixel windows run on the kernels too, and match the program."""
    _, net = random_net("compact-5k-x4")
    calls = []
    real_window = fused_compact.window
    monkeypatch.setattr(fused_compact, "window", lambda n, lr: calls.append(lr.shape) or real_window(n, lr))
    for lr in (set5[0][:1, :1], set5[0][:1, :9], set5[0][:9, :1], set5[0][:2, :3]):
        assert_parity(upscale(lr, net), numpy_engine(lr, net, monkeypatch))
    assert calls == [(1, 1, 3), (1, 9, 3), (9, 1, 3), (2, 3, 3)]
    rgba = np.concatenate([set5[1], np.full(set5[1].shape[:2] + (1,), 200, np.uint8)], axis=2)
    assert np.array_equal(upscale(rgba, net)[..., :3], upscale(set5[1], net))
    with pytest.raises(TinySRError, match="fused compact net: need HWC RGB uint8 of at least 1x1"):
        fused_compact.window(fused_compact.compact_net(random_net("compact-1k-x2")[0]), set5[0][:, :, 0])


# ---------------------------------------------------------------- the engine


def test_the_default_engine_for_a_compact_net_is_fused(set5, monkeypatch):
    model, net = random_net("compact-5k-x2")
    options = {"self_ensemble": False, "device": "cpu", "rgb": True, "fused": None}
    assert choose_engine(net, **options) == choose_engine(model, **options) == "fused"
    monkeypatch.setattr(engine, "torch_available", lambda: False)  # the core install: no torch
    assert choose_engine(net, **options) == "fused"
    assert choose_engine(net, **(options | {"self_ensemble": True})) == "numpy"
    assert choose_engine(net, **(options | {"rgb": False})) == "numpy"  # grey averages float channels
    monkeypatch.setattr(fused, "available", lambda: False)  # no Numba
    assert choose_engine(net, **options) == "numpy"
    assert choose_engine(model, **options) == "torch"


def test_fused_true_where_it_cannot_apply_is_an_error(set5):
    model, net = random_net("compact-1k-x2")
    cases = [
        (model.double(), {}, "a float32 model on CPU"),
        (random_edsr("edsr-tiny"), {}, "a Y-only tiny net with a bicubic anchor and ReLU (or no) activations, or a "
                                       "compact net"),
        (net, {"self_ensemble": True}, "RGB input without self-ensemble"),
        (net, {"rgb": False}, "RGB input without self-ensemble"),
    ]
    for model, options, why in cases:
        with pytest.raises(TinySRError, match=f"^the fused path needs {re.escape(why)}$"):
            choose_engine(model, **({"self_ensemble": False, "device": "cpu", "rgb": True, "fused": True} | options))
    assert upscale(set5[0][:, :, 0], net).shape == (192, 166)  # grey: the default takes another engine
