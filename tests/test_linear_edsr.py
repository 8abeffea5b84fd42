"""benchmarks/linear_edsr.py: a 0-block EDSR collapses exactly into one conv + pixel shuffle (borders redone)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.infer.channels import upscale_with
from tinysr.infer.upscale import upscale
from tinysr.models.window import receptive_radius, to_image, to_tensor
from tinysr.models import create_model

from helpers import random_edsr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # benchmark code, outside the package
from linear_edsr import border_bands, collapse_linear, collapsed_window_fn  # noqa: E402


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_collapse_equals_network(scale, data_dir):
    img = read_image(data_dir / "Set5" / "bird.png")[0][:61, :47]
    model = random_edsr(n_blocks=0, n_feats=4, scale=scale)
    linear = collapse_linear(model)
    assert tuple(linear.conv.weight.shape) == (3 * scale * scale, 3, 9, 9)
    with torch.no_grad():
        ref, plain = to_image(model(to_tensor(img))), to_image(linear(to_tensor(img)))
    r = receptive_radius(model) * scale
    assert np.abs(plain - ref)[r:-r, r:-r].max() < 1e-3  # interior: exact up to float32 rounding
    assert np.abs(plain - ref).max() > 1  # the border differs (per-layer zero padding) ...
    fn = collapsed_window_fn(model)
    assert np.abs(fn(img) - ref).max() < 1e-3  # ... until the border bands are redone
    tiled = upscale_with(fn, img, scale=scale, tile=16, overlap=receptive_radius(model))
    assert np.abs(tiled.astype(int) - upscale(img, model)).max() <= 1


def test_tiny_images_and_bands():
    model = random_edsr(n_blocks=0, n_feats=4, scale=2)
    img = np.array([[[10, 200, 90], [0, 255, 3]]], np.uint8)
    with torch.no_grad():
        ref = to_image(model(to_tensor(img)))
    assert np.abs(collapsed_window_fn(model)(img) - ref).max() < 1e-3
    assert border_bands(10, 20, 4) == [(0, 4, 0, 20), (6, 10, 0, 20), (0, 10, 0, 4), (0, 10, 16, 20)]


def test_nonlinear_model_refused():
    with pytest.raises(TinySRError, match="only a linear network"):
        collapse_linear(create_model("edsr", n_blocks=1, n_feats=4))
