"""Deploying the tiny family: exact receptive radius, NumPy runtime and ONNX against torch, tiled == untiled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tinysr.infer import fused
from tinysr.export import runtime
from tinysr.data.io import read_image
from tinysr.export.numpy_export import export_numpy
from tinysr.export.onnx import export_onnx, onnx_session, onnx_window_fn
from tinysr.infer.upscale import upscale
from tinysr.models.window import receptive_radius
from tinysr.models import PRESETS
from tinysr.models.tiny import TinySR
from tinysr.infer.tiling import run_tiled

TOLERANCE = 1e-3  # on 0..255 float outputs: float32 rounding of differently ordered sums (measured <= 5e-4)
CONFIGS = {  # name -> (preset, overrides): every program path (Y/RGB, each anchor, each activation, x2/x3/x4)
    "1k-x2": ("tiny-1k-x2", {}),  # trained expanded: this is its collapsed twin
    "1k-x2-plain": ("tiny-1k-x2", {"expand": 1}),  # the same deployed net, random weights not shrunk by folding
    "100-x3": ("tiny-100-x3", {}),
    "500-x4": ("tiny-500-x4", {}),
    "prelu": ("tiny-1k-x2", {"act": "prelu"}),
    "rgb-nearest-lrelu": ("tiny-1k-x2", {"channels": "rgb", "anchor": "nearest", "act": "lrelu"}),
    "rgb-bicubic-x3": ("tiny-1k-x3", {"channels": "rgb"}),
    "y-no-anchor": ("tiny-250-x2", {"anchor": "none", "act": "identity"}),
}


def random_tiny(key: str, *, dtype=torch.float32) -> TinySR:
    """The collapsed twin of an expanded net with random weights (a trained net's residual is not zero)."""
    preset, overrides = CONFIGS[key]
    torch.manual_seed(0)
    model = TinySR(dataclasses.replace(PRESETS[preset], **overrides))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.collapse().eval().to(dtype)


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    img, _ = read_image(data_dir / "Set5" / "butterfly.png")
    return np.ascontiguousarray(img[100:141, 60:93])  # 41x33: odd sizes, last tiles partial


def _torch_sr(model: TinySR, lr: np.ndarray) -> np.ndarray:
    """CHW float32 -> CHW float32 through torch."""
    with torch.no_grad():
        return model(torch.from_numpy(lr)[None]).numpy()[0]


@pytest.mark.parametrize(("preset", "expected"), [("tiny-100-x2", 2), ("tiny-1k-x2", 4), ("tiny-5k-x2", 6),
                                                  ("tiny-100-x3", 2), ("tiny-500-x4", 3), ("tiny-1k-x4", 4)])
def test_receptive_radius_pinned(preset, expected):
    assert receptive_radius(TinySR(PRESETS[preset])) == expected


@pytest.mark.parametrize("key", ["1k-x2", "100-x3", "500-x4", "rgb-nearest-lrelu"])
def test_receptive_radius_is_exact(key):
    """In float64: an LR pixel `radius` columns away moves the output of LR pixel (10, 10); one further does not."""
    model = random_tiny(key, dtype=torch.float64)
    r, s = model.receptive_radius(), model.config.scale
    lr = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (1, 3, 21, 21)))
    with torch.no_grad():
        base = model(lr)[0, :, 10 * s:11 * s, 10 * s:11 * s]
        moved = []
        for dx in (r, r + 1, -r, -r - 1):
            bumped = lr.clone()
            bumped[0, :, 10, 10 + dx] += 50
            moved.append(float((model(bumped)[0, :, 10 * s:11 * s, 10 * s:11 * s] - base).abs().max()))
    assert moved[0] > 1e-3 and moved[2] > 1e-3 and moved[1] == 0 and moved[3] == 0


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_numpy_runtime_matches_torch(key, tmp_path):
    model = random_tiny(key)
    export_numpy(model, tmp_path / "m.npz")
    loaded = runtime.load(tmp_path / "m.npz")
    assert runtime.receptive_radius(loaded) == model.receptive_radius()
    lr = np.random.default_rng(0).uniform(0, 255, (3, 23, 31)).astype(np.float32)
    sr = runtime.run(loaded, lr)
    assert sr.shape == (3, 23 * model.config.scale, 31 * model.config.scale)
    assert np.abs(sr - _torch_sr(model, lr)).max() < TOLERANCE


def test_numpy_export_collapses_an_expanded_net(tmp_path):
    preset, _ = CONFIGS["1k-x2"]
    torch.manual_seed(0)
    expanded = TinySR(dataclasses.replace(PRESETS[preset], expand=4))  # trained expanded
    assert expanded.convs[0].__class__.__name__ == "ReparamConv"
    export_numpy(expanded, tmp_path / "m.npz")
    loaded = runtime.load(tmp_path / "m.npz")
    assert loaded.config["collapsed"] is True and loaded.weights["convs.0.weight"].shape == (6, 1, 3, 3)


@pytest.mark.parametrize("key", ["1k-x2", "100-x3", "500-x4", "rgb-nearest-lrelu"])
def test_onnx_matches_torch_at_any_size(key, tmp_path):
    """ONNX Resize (cubic a=-0.5, half_pixel) after a 2-pixel symmetric pad is MATLAB's bicubic, borders too."""
    model = random_tiny(key)
    export_onnx(model, tmp_path / "m.onnx")
    session = onnx_session(tmp_path / "m.onnx", threads=1)
    for h, w in ((23, 31), (2, 2), (40, 17)):
        lr = np.random.default_rng(h).uniform(0, 255, (3, h, w)).astype(np.float32)
        (sr,) = session.run(["sr"], {"lr": lr[None]})
        assert np.abs(sr[0] - _torch_sr(model, lr)).max() < TOLERANCE, (h, w)


@pytest.mark.parametrize("key", ["1k-x2-plain", "100-x3", "500-x4"])
def test_tiled_equals_untiled(photo, key, tmp_path):
    """The rule of the EDSR tests for float-rounding paths: uint8 outputs within 1 level at < 0.1% of pixels, and
    one pixel less overlap than the radius wrong beyond that. Torch, NumPy runtime and ONNX Runtime each."""
    model = random_tiny(key)
    r, s = model.receptive_radius(), model.config.scale
    export_numpy(model, tmp_path / "m.npz")
    export_onnx(model, tmp_path / "m.onnx")
    loaded = runtime.load(tmp_path / "m.npz")
    onnx_fn = onnx_window_fn(onnx_session(tmp_path / "m.onnx", threads=1))
    paths = {
        "torch": lambda tile, overlap: upscale(photo, model, tile=tile, overlap=overlap, fused=False),
        "numpy": lambda tile, overlap: runtime.upscale(photo, loaded, tile=tile, overlap=overlap, fused=False),
        "onnx": lambda tile, overlap: run_tiled(onnx_fn, photo, scale=s, tile=tile, overlap=overlap, out_channels=3),
    }
    if fused.available():  # the compiled kernels (tinysr.infer.fused), from torch and from the runtime
        paths["fused"] = lambda tile, overlap: upscale(photo, model, tile=tile, overlap=overlap, fused=True)
        paths["numpy, fused"] = lambda tile, overlap: runtime.upscale(photo, loaded, tile=tile, overlap=overlap,
                                                                      fused=True)
    whole = paths["torch"](None, 0).astype(int)
    for name, run in paths.items():
        assert np.abs(run(None, 0).astype(int) - whole).max() <= 1, name
        tiled = np.abs(run(7, r).astype(int) - whole)
        assert tiled.max() <= 1 and (tiled > 0).mean() < 1e-3, name
        assert np.abs(run(7, r - 1).astype(int) - whole).max() > 1, name  # beyond float rounding
