"""tinysr.infer.upscale: receptive radius, tiled == untiled, self-ensemble, grey and alpha, and tinysr.infer.tiling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.infer.channels import upscale_alpha
from tinysr.infer.upscale import network_window_fn, upscale
from tinysr.models.window import DIHEDRAL, receptive_radius, to_image, to_tensor, to_uint8_image
from tinysr.models import create_model
from tinysr.resize import imresize, to_uint8
from tinysr.infer.tiling import quantize_into, run_tiled, tile_grid
from tinysr.receptive import receptive_radius_of

from helpers import random_edsr

CONFIGS = [dict(n_blocks=0, n_feats=4, scale=2), dict(n_blocks=1, n_feats=8, scale=3),
           dict(n_blocks=2, n_feats=8, scale=4, res_scale=0.1)]


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    img, _ = read_image(data_dir / "Set5" / "butterfly.png")
    return np.ascontiguousarray(img[100:141, 60:93])  # 41x33: odd sizes, last tiles partial


def direct(model, img: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_image(model(to_tensor(img)))


@pytest.mark.parametrize(("n_blocks", "scale", "expected"), [(0, 2, 4), (0, 3, 4), (0, 4, 4), (1, 2, 6),
                                                             (16, 2, 36), (32, 4, 68)])
def test_receptive_radius_pinned(n_blocks, scale, expected):
    model = create_model("edsr", n_blocks=n_blocks, n_feats=4, scale=scale)
    assert receptive_radius(model) == expected


def test_receptive_radius_of_chain():
    assert receptive_radius_of([("conv", 1)] * 3) == 3
    assert receptive_radius_of([("conv", 1), ("shuffle", 2), ("conv", 1)]) == 2
    assert receptive_radius_of([("shuffle", 2), ("conv", 2)]) == 1  # HR radius 2 = 1 LR pixel exactly
    assert receptive_radius_of([("shuffle", 3), ("conv", 1)]) == 1


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_radius_is_tight_for_linear_edsr(scale):
    # 0 blocks: no ReLU, so every input within the radius reaches the output and nothing beyond it does.
    model = random_edsr(n_blocks=0, n_feats=4, scale=scale)
    radius, size, c = receptive_radius(model), 21, 10
    base = np.full((size, size, 3), 100, np.uint8)
    ref = direct(model, base)[c * scale:(c + 1) * scale, c * scale:(c + 1) * scale]
    for distance, should_change in ((radius, True), (radius + 1, False)):
        changed = False
        for dy, dx in ((0, -distance), (0, distance), (-distance, 0), (distance, 0)):
            img = base.copy()
            img[c + dy, c + dx] = 250
            out = direct(model, img)[c * scale:(c + 1) * scale, c * scale:(c + 1) * scale]
            changed |= not np.array_equal(out, ref)
        assert changed == should_change, distance


def test_tile_grid_covers_once():
    tiles = tile_grid(41, 33, tile=16, overlap=4)
    assert len(tiles) == 9
    cover = np.zeros((41, 33), int)
    for t in tiles:
        y0, y1, x0, x1 = t.core
        cover[y0:y1, x0:x1] += 1
        wy0, wy1, wx0, wx1 = t.window
        assert (wy0, wx0) == (max(y0 - 4, 0), max(x0 - 4, 0)) and (wy1, wx1) == (min(y1 + 4, 41), min(x1 + 4, 33))
    assert (cover == 1).all()
    assert [t.core for t in tile_grid(5, 7, tile=None, overlap=3)] == [(0, 5, 0, 7)]
    with pytest.raises(TinySRError, match="--tile"):
        tile_grid(5, 5, tile=0, overlap=1)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['n_blocks']}b-x{c['scale']}")
@pytest.mark.parametrize("tile", [7, 16])
def test_tiled_equals_untiled_exactly(photo, config, tile):
    # oneDNN picks conv algorithms by input size (last-bit differences); torch's native conv does not, so with it
    # disabled the tiled result is bit-identical, in float as in uint8.
    model = random_edsr(**config)
    with torch.backends.mkldnn.flags(enabled=False):
        whole = upscale(photo, model)
        tiled = upscale(photo, model, tile=tile)
        short = upscale(photo, model, tile=tile, overlap=receptive_radius(model) - 1)
    assert whole.shape == (41 * config["scale"], 33 * config["scale"], 3) and whole.dtype == np.uint8
    assert np.array_equal(tiled, whole)
    assert not np.array_equal(short, whole)  # the radius is needed: one pixel less context shows


def test_tile_workers_give_the_same_image_and_keep_torch_threads(photo):
    model = random_edsr(**CONFIGS[1])
    threads = torch.get_num_threads()
    seen: list[int] = []
    with torch.backends.mkldnn.flags(enabled=False):
        one = upscale(photo, model, tile=8, workers=1)
        three = upscale(photo, model, tile=8, workers=3, progress=seen.append)
    assert np.array_equal(one, three)
    assert seen == list(range(1, 6 * 5 + 1))  # 41x33 in tiles of 8: 6 x 5 tiles, counted in order
    assert torch.get_num_threads() == threads


def test_a_failing_tile_fails_the_whole_run(photo):
    calls = []

    def fn(window):
        calls.append(window.shape)
        if len(calls) == 3:
            raise RuntimeError("tile 3 broke")
        return np.zeros((window.shape[0] * 2, window.shape[1] * 2, 3), np.float32)

    with pytest.raises(RuntimeError, match="tile 3 broke"):
        run_tiled(fn, photo, scale=2, tile=8, overlap=0, out_channels=3, workers=2)
    with pytest.raises(TinySRError, match="workers"):
        run_tiled(fn, photo, scale=2, tile=8, overlap=0, out_channels=3, workers=0)


def test_tiled_with_onednn_within_one_level(photo):
    # Default backend (oneDNN): float outputs differ by at most a few float32 ulps (< 1e-3 on 0..255), so uint8
    # outputs may differ by 1 where a value sits at a rounding boundary.
    model = random_edsr(**CONFIGS[2])
    whole, tiled = upscale(photo, model), upscale(photo, model, tile=7)
    diff = np.abs(whole.astype(int) - tiled)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_self_ensemble_is_mean_of_dihedral_runs(photo):
    model = random_edsr(**CONFIGS[0])
    img = photo[:20, :13]
    runs = []
    for k, flip in DIHEDRAL:
        t = np.rot90(img, k)
        t = t[:, ::-1] if flip else t
        out = direct(model, np.ascontiguousarray(t))
        out = out[:, ::-1] if flip else out
        runs.append(np.rot90(out, -k))
    expected = np.clip(np.rint(np.mean(runs, axis=0, dtype=np.float32)), 0, 255)
    with torch.backends.mkldnn.flags(enabled=False):
        got = upscale(img, model, self_ensemble=True)
        assert np.array_equal(upscale(img, model, self_ensemble=True, tile=6), got)
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert not np.array_equal(got, upscale(img, model))
    assert len(set(DIHEDRAL)) == 8


def test_grey_in_grey_out(photo):
    model = random_edsr(**CONFIGS[0])
    grey = photo[:, :, 1].copy()
    out = upscale(grey, model)
    assert out.shape == (82, 66) and out.dtype == np.uint8
    rgb = direct(model, np.repeat(grey[:, :, None], 3, axis=2))
    assert np.abs(out.astype(int) - np.clip(np.rint(rgb.mean(axis=2)), 0, 255)).max() <= 1
    assert upscale(grey[:, :, None], model).shape == (82, 66, 1)


def test_alpha_kept_with_bicubic(photo):
    model = random_edsr(**CONFIGS[0])
    alpha = np.linspace(0, 255, photo.shape[0] * photo.shape[1]).reshape(photo.shape[:2]).astype(np.uint8)
    out = upscale(np.dstack([photo, alpha]), model)
    assert out.shape == (82, 66, 4)
    assert np.array_equal(out[:, :, :3], upscale(photo, model))
    assert np.array_equal(out[:, :, 3], to_uint8(imresize(alpha.astype(np.float64), 2.0)))
    opaque = upscale_alpha(np.full((3, 5), 255, np.uint8), 3)
    assert opaque.shape == (9, 15) and (opaque == 255).all()


def test_one_pixel_image_gives_scale_by_scale():
    model = random_edsr(**CONFIGS[0])
    img = np.array([[[10, 200, 90]]], np.uint8)
    out = upscale(img, model, tile=1)
    assert out.shape == (2, 2, 3)
    assert np.array_equal(out, np.clip(np.rint(direct(model, img)), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_bad_images_raise_one_line(bad):
    with pytest.raises(TinySRError, match="upscale needs"):
        upscale(bad, random_edsr(**CONFIGS[0]))


def test_window_fn_matches_forward(photo):
    model = random_edsr(**CONFIGS[1])
    fn = network_window_fn(model, device="cpu", self_ensemble=False)
    assert np.array_equal(fn(photo), direct(model, photo))


def test_quantizing_window_fn_equals_rounding_the_float_output(photo):
    model = random_edsr(**CONFIGS[1])
    photo = np.where(photo > 100, 255, 0).astype(np.uint8)  # hard edges: the output overshoots 0..255
    floats = network_window_fn(model, device="cpu", self_ensemble=False)(photo)
    assert floats.min() < 0 and floats.max() > 255  # the clipping is exercised
    expected = np.empty(floats.shape, np.uint8)
    quantize_into(expected, floats.copy())
    got = network_window_fn(model, device="cpu", self_ensemble=False, quantize=True)(photo)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)
    halves = torch.tensor([-0.5, 0.5, 1.5, 2.5, 254.5, 255.5, 300.0]).view(1, 1, 1, 7)
    assert to_uint8_image(halves).ravel().tolist() == [0, 0, 2, 2, 254, 255, 255]  # half to even, as np.rint


def test_lazy_top_level_upscale_keeps_import_light():
    code = ("import sys, numpy as np, tinysr; assert 'torch' not in sys.modules; f = tinysr.upscale; "
            "sr = f(np.zeros((9, 7, 3), np.uint8), 'tiny-1k-x2'); sr = f(sr, tinysr.load_model('tiny-1k-x2')); "
            "assert sr.shape == (36, 28, 3) and 'torch' not in sys.modules and f.__module__ == 'tinysr.api'; "
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_top_level_api_takes_a_name_a_path_or_a_model(data_dir):
    """`tinysr.upscale(img, "tiny-1k-x2")` used to raise AttributeError ('str' object has no attribute 'modules')."""
    import tinysr
    from tinysr.errors import TinySRError
    from tinysr.pretrained import pretrained_path

    image = read_image(data_dir / "Set5" / "bird.png")[0][:20, :24]
    model = tinysr.load_model("tiny-1k-x2")
    expected = tinysr.upscale(image, model)
    assert expected.shape == (40, 48, 3)
    assert np.array_equal(tinysr.upscale(image, "tiny-1k-x2"), expected)
    assert np.array_equal(tinysr.upscale(image, pretrained_path("tiny-1k-x2")), expected)
    with pytest.raises(TinySRError, match="model must be a network"):
        tinysr.upscale(image, 3)
