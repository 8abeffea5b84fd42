"""tinysr.infer.fused: Y-only tiny nets as compiled kernels, against MATLAB's bicubic and the torch path."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysr.infer import fused
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.infer.upscale import network_window_fn, upscale
from tinysr.models import PRESETS
from tinysr.models.tiny import TinySR
from tinysr.resize import imresize

from helpers import random_edsr

pytest.importorskip("numba", reason="the fused path needs Numba (a core dependency)")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    img, _ = read_image(data_dir / "Set5" / "butterfly.png")
    return np.ascontiguousarray(img[100:141, 60:93])  # 41x33: odd sizes, last tiles partial


def random_tiny(preset: str, **overrides) -> TinySR:
    """A plain (expand 1) net of the preset with random weights: its residual is far from zero."""
    torch.manual_seed(0)
    model = TinySR(dataclasses.replace(PRESETS[preset], expand=1, **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_phase_taps_pinned():
    offsets, taps = fused.phase_taps(2)
    assert offsets.tolist() == [[-2, -1, 0, 1], [-1, 0, 1, 2]]
    # MATLAB's cubic at 1.75, 0.75, 0.25, 1.25 (phase 0, output at LR position i - 1/4) and mirrored (phase 1)
    assert taps.tolist() == [[-0.0234375, 0.2265625, 0.8671875, -0.0703125],
                             [-0.0703125, 0.8671875, 0.2265625, -0.0234375]]
    offsets, taps = fused.phase_taps(3)  # the middle phase sits on the input pixel: one tap of weight 1
    assert offsets[1].tolist() == [0, 0, 0, 0] and taps[1].tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(41, 33), (2, 2), (3, 17)])
def test_zero_residual_is_matlab_bicubic_exactly(photo, scale, size):
    """x2 and x4 taps are dyadic (k/128, k/1024): float32 sums of uint8 are exact, so the kernel must equal MATLAB's
    imresize in float64 rounded half to even, borders included."""
    lr = photo[:size[0], :size[1]]
    phases = np.zeros((scale * scale, *size), np.float32)
    got = fused.anchor_add_round(lr, phases, np.ones(3, np.float32), scale)
    expected = np.rint(np.clip(imresize(lr.astype(np.float64), float(scale)), 0, 255))
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_residual_goes_to_its_sub_pixel_phase_with_the_channel_gain():
    """A flat image's bicubic is itself, so the output is 100 + gain[c] * pixel_shuffle(phases) in float32."""
    rng = np.random.default_rng(0)
    lr = np.full((5, 7, 3), 100, np.uint8)
    phases = rng.uniform(-60, 60, (9, 5, 7)).astype(np.float32)
    gain = np.array([1.0, 0.5, 2.0], np.float32)
    got = fused.anchor_add_round(lr, phases, gain, 3)
    shuffled = torch.pixel_shuffle(torch.from_numpy(phases)[None], 3)[0].numpy()  # (1, 15, 21)
    expected = np.rint(np.clip(np.float32(100) + gain[None, None, :] * shuffled[0][:, :, None], 0, 255))
    assert np.array_equal(got, expected)
    assert got.min() == 0 and got.max() > 200  # the clip is exercised


@pytest.mark.parametrize(("preset", "scale"), [("tiny-1k-x2", 2), ("tiny-100-x3", 3), ("tiny-500-x4", 4),
                                               ("tiny-5k-x2", 2)])
def test_fused_upscale_matches_the_torch_path(photo, preset, scale):
    model = random_tiny(preset)
    plain = upscale(photo, model, fused=False)
    fast = upscale(photo, model, fused=True)
    tiled = upscale(photo, model, tile=7, fused=True, workers=2)  # no oneDNN caveat: same ops for every window
    short = upscale(photo, model, tile=7, overlap=model.receptive_radius() - 1, fused=True)
    diff = np.abs(plain.astype(int) - fast)
    assert fast.shape == (41 * scale, 33 * scale, 3)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float order only: a .5 tie may round the other way
    assert np.array_equal(tiled, fast)
    assert np.abs(short.astype(int) - fast).max() > 1


def test_an_expanded_net_runs_collapsed_and_identity_nets_run_too(photo):
    torch.manual_seed(1)
    expanded = TinySR(dataclasses.replace(PRESETS["tiny-1k-x2"], expand=4)).eval()
    with torch.no_grad():
        for p in expanded.parameters():
            p.normal_(0, 0.1)
    net = fused.fused_net(expanded)
    assert [w.shape for w in net.weights] == [(6, 1, 3, 3), (6, 6, 3, 3), (6, 6, 3, 3), (4, 6, 3, 3)] and net.relu
    diff = np.abs(upscale(photo, expanded.collapse(), fused=False).astype(int) - upscale(photo, expanded, fused=True))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    linear = random_tiny("tiny-250-x2", act="identity")
    assert not fused.fused_net(linear).relu
    diff = np.abs(upscale(photo, linear, fused=False).astype(int) - upscale(photo, linear, fused=True))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_rgba_and_thin_images_take_the_fused_path_or_fall_back(photo):
    model = random_tiny("tiny-1k-x2")
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 200, np.uint8)], axis=2)
    thin = photo[:1, :9]  # 1 pixel high: bicubic's mirror needs 2, so the torch path serves it
    assert np.array_equal(upscale(rgba, model, fused=True)[..., :3], upscale(photo, model, fused=True))
    assert np.array_equal(upscale(thin, model, fused=True), upscale(thin, model, fused=False))
    grey = photo[:, :, 0]  # grey averages float channels: the fused path does not apply, the default skips it
    assert upscale(grey, model).shape == (82, 66)


def test_fused_true_where_it_cannot_apply_is_an_error(photo, monkeypatch):
    tiny = random_tiny("tiny-1k-x2")
    cases = [
        (random_edsr("edsr-tiny"), {}, "a Y-only tiny net with a bicubic anchor"),
        (random_tiny("tiny-1k-x2", channels="rgb"), {}, "a Y-only tiny net with a bicubic anchor"),
        (random_tiny("tiny-1k-x2", anchor="nearest"), {}, "a Y-only tiny net with a bicubic anchor"),
        (random_tiny("tiny-1k-x2", act="prelu"), {}, "a Y-only tiny net with a bicubic anchor and ReLU"),
        (tiny, {"self_ensemble": True}, "RGB input without self-ensemble"),
        (random_tiny("tiny-1k-x2").double(), {}, "a float32 model on CPU"),
    ]
    for model, options, why in cases:
        with pytest.raises(TinySRError, match=f"^the fused path needs {re.escape(why)}"):
            network_window_fn(model, device="cpu", quantize=True, fused=True, **{"self_ensemble": False, **options})
        network_window_fn(model, device="cpu", self_ensemble=False, quantize=True, fused=None)  # auto: no error
    monkeypatch.setattr(fused, "available", lambda: False)
    with pytest.raises(TinySRError, match=r"needs Numba \(pip install numba\)"):
        upscale(photo, random_tiny("tiny-1k-x2"), fused=True)
    upscale(photo, random_tiny("tiny-1k-x2"))  # the default falls back to torch


def test_kernel_checks_its_inputs(photo):
    with pytest.raises(TinySRError, match="HWC RGB uint8 of at least 2x2"):
        fused.anchor_add_round(photo[:1], np.zeros((4, 1, 33), np.float32), np.ones(3, np.float32), 2)
    with pytest.raises(TinySRError, match="HWC RGB uint8 of at least 2x2"):
        fused.window(fused.fused_net(random_tiny("tiny-1k-x2")), photo[:, :1])
    with pytest.raises(TinySRError, match=r"need \(4, 41, 33\) float32 phases"):
        fused.anchor_add_round(photo, np.zeros((4, 41, 32), np.float32), np.ones(3, np.float32), 2)


def test_kernels_compile_without_a_writable_cache(tmp_path):
    """Where Numba finds nowhere to cache (read-only install, no writable home), `cache=True` raises at import; the
    kernels must then compile per process instead of failing."""
    code = ("import numpy as np; from tinysr.infer import fused\n"
            "out = fused.anchor_add_round(np.full((3, 4, 3), 7, np.uint8), np.zeros((4, 3, 4), np.float32),"
            " np.ones(3, np.float32), 2)\n"
            "import tinysr.infer._fused_kernel as k\n"
            "print(out.shape, int(out.min()), int(out.max()), type(k.fused._cache).__name__)\n")
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "helpers.NoCacheLocator",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(6, 8, 3) 7 7 NullCache"  # compiled, not cached
    env.pop("NUMBA_CACHE_LOCATOR_CLASSES")
    probe = "import tinysr.infer._fused_kernel as k; print(k.conv._cache.__class__.__name__)"
    cached = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert cached.stdout.strip() == "FunctionCache"  # the normal case does cache


def test_fused_none_takes_the_kernels_at_every_size(photo, monkeypatch):
    """No size rule sends the default path to a slower engine: fused=None runs a Y-only tiny net through the
    kernels for a 41x33 image as for a large one, whole or tiled."""
    model = random_tiny("tiny-1k-x2")
    calls = []
    real_window = fused.window
    monkeypatch.setattr(fused, "window", lambda net, lr: calls.append(lr.shape) or real_window(net, lr))
    upscale(photo, model)
    assert calls == [(41, 33, 3)]
    upscale(photo, model, tile=16)
    assert len(calls) == 1 + 9
