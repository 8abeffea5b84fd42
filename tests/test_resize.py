"""tinysr.resize: MATLAB-exact bicubic imresize (numpy uint8/float paths) and its torch twin."""

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinysr import _resize_blas
from tinysr.errors import TinySRError
from tinysr.resize import IMRESIZE_VERSION, contributions, cubic, imresize, imresize_torch, to_uint8

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / os.environ.get("TINYSR_DATA", "../shared/data")  # an absolute env value wins the join
MATLAB = DATA / "matlab_imresize"


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB", f"{path} is {im.mode}"
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def lena() -> np.ndarray:
    return _read_rgb(MATLAB / "lena_512x512.png")


def _random_image(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ---------------------------------------------------------------- exactness against MATLAB R2015b


def test_uint8_path_matches_matlab_bit_for_bit(lena):
    expected = _read_rgb(MATLAB / "lena_123x234_uint8.png")
    out = imresize(lena, output_shape=(123, 234))
    assert out.dtype == np.uint8 and out.shape == (123, 234, 3)
    assert np.count_nonzero(out != expected) == 0


def test_float_path_then_to_uint8_matches_matlab_double(lena):
    expected = _read_rgb(MATLAB / "lena_123x234_double.png")
    out = imresize(lena.astype(np.float64), output_shape=(123, 234))
    assert out.dtype == np.float64
    assert np.count_nonzero(to_uint8(out) != expected) == 0
    # the two MATLAB conventions really differ: rounding after each pass moves thousands of values
    assert np.count_nonzero(imresize(lena, output_shape=(123, 234)) != expected) > 1000


def _reference_imresize(img: np.ndarray, scale=None, output_shape=None) -> np.ndarray:
    """The slow oracle: MATLAB's algorithm written plainly, float64, taps summed left to right per pass."""
    in_shape = img.shape[:2]
    if output_shape is None:
        scales = (scale, scale) if np.isscalar(scale) else tuple(scale)
        output_shape = tuple(int(np.ceil(s * n)) for s, n in zip(scales, in_shape))
    else:
        scales = tuple(o / n for o, n in zip(output_shape, in_shape))
    x = img.astype(np.float64)
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        weights, indices = contributions(x.shape[axis], output_shape[axis], scales[axis])
        moved = np.moveaxis(x, axis, 0)
        out = np.zeros((weights.shape[0],) + moved.shape[1:])
        for tap in range(weights.shape[1]):
            out += weights[:, tap].reshape(-1, *([1] * (moved.ndim - 1))) * moved[indices[:, tap]]
        x = np.moveaxis(out, 0, axis)
        if img.dtype == np.uint8:
            x = to_uint8(x).astype(np.float64)
    return x.astype(np.uint8) if img.dtype == np.uint8 else x


@pytest.mark.parametrize(
    "kwargs",
    [{"scale": 0.5}, {"scale": 0.25}, {"scale": 2}, {"scale": 1 / 3}, {"scale": (0.8, 1.7)},
     {"output_shape": (57, 133)}],
)
def test_fast_uint8_path_equals_float64_oracle_on_noise_and_ramps(kwargs):
    # float32 sums + float64 recomputation near ties must give the oracle's pixels exactly; ramps make exact ties
    noise = _random_image((96, 130, 3), seed=4)
    ramp = np.add.outer(np.arange(96), np.arange(130) // 2).astype(np.uint8)
    for img in (noise, ramp):
        np.testing.assert_array_equal(imresize(img, **kwargs), _reference_imresize(img, **kwargs))


def test_float_path_equals_float64_oracle(lena):
    img = lena[100:190, 50:170].astype(np.float64)
    np.testing.assert_allclose(imresize(img, 0.37), _reference_imresize(img, 0.37), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((70, 45, 3), {"scale": 2}),  # 140 output rows: more than one block, the last one short
        ((37, 29), {"scale": 4}),  # grey
        ((150, 61, 4), {"scale": 0.25}),  # 38 rows: a short last row band
        ((41, 90, 3), {"scale": 3}),  # not dyadic: float32 sums near ties recomputed
        ((90, 33, 3), {"scale": (1.7, 0.8)}),  # columns first
        ((65, 70, 2), {"output_shape": (131, 2)}),  # columns first, column bands of one output each
        ((1, 5, 3), {"scale": 2}),
    ],
)
def test_uint8_and_float_paths_equal_the_oracle_across_blocks_orders_and_channels(shape, kwargs):
    img = _random_image(shape, seed=sum(shape))
    ramp = np.add.outer(np.arange(shape[0] // 2), np.arange(shape[1]) // 3).astype(np.uint8)  # exact ties
    img[: shape[0] // 2] = ramp[..., None] if img.ndim == 3 else ramp
    np.testing.assert_array_equal(imresize(img, **kwargs), _reference_imresize(img, **kwargs))
    floats = img.astype(np.float64) + np.random.default_rng(5).uniform(-0.5, 0.5, size=shape)
    np.testing.assert_allclose(imresize(floats, **kwargs), _reference_imresize(floats, **kwargs), rtol=0, atol=1e-9)


def test_blocks_are_whole_row_bands_and_the_tests_above_span_several():
    assert _resize_blas.BLOCK_ROWS % _resize_blas.ROW_STEP == 0  # a block's rows pass starts at a band boundary
    assert _resize_blas.BLOCK_ROWS < 140 and 38 % _resize_blas.ROW_STEP != 0


@pytest.mark.parametrize("scale, exact", [(2, True), (4, True), (0.5, True), (0.25, True), (3, False), (1 / 3, False)])
def test_float32_sums_are_declared_exact_only_for_dyadic_weights(scale, exact):
    weights, _ = contributions(64, int(64 * scale), float(scale))
    assert (_resize_blas._float32_bound(weights) == 0.0) == exact
    if exact:  # the claim itself: float32 sums of 0..255 integers equal float64 ones
        samples = np.random.default_rng(6).integers(0, 256, size=(10_000, weights.shape[1]))
        sums32 = (weights.astype(np.float32)[:1] * samples.astype(np.float32)).sum(axis=1, dtype=np.float32)
        np.testing.assert_array_equal(sums32.astype(np.float64), (weights[:1] * samples).sum(axis=1))


@pytest.mark.parametrize("scale", [2, 0.5, 4, 0.25])
def test_exact_float32_shortcut_equals_the_general_recomputing_path(monkeypatch, scale):
    img = np.concatenate([_random_image((40, 52, 3), seed=7), np.add.outer(np.arange(40), np.arange(52))[..., None]
                          .repeat(3, axis=2).astype(np.uint8)])
    fast = imresize(img, scale)
    bound = lambda weights: 4 * (weights.shape[1] + 1) * 2.0**-24 * 255 * float(np.abs(weights).sum(axis=1).max())
    for cache in (_resize_blas._taps, _resize_blas._passes):
        cache.cache_clear()
    monkeypatch.setattr(_resize_blas, "_float32_bound", bound)
    try:
        np.testing.assert_array_equal(imresize(img, scale), fast)
        assert _resize_blas._taps(contributions, 40 * 2, int(80 * scale), float(scale)).bound > 0  # the general path really ran
    finally:
        for cache in (_resize_blas._taps, _resize_blas._passes):
            cache.cache_clear()


@pytest.mark.parametrize("m, k, n", [(4, 30, 6120), (1, 30, 700), (300, 90, 12), (500, 7, 1), (3, 5, 4)])
def test_matmul_in_single_thread_pieces_equals_one_product(m, k, n):
    rng = np.random.default_rng(8)
    a, b = rng.uniform(-1, 1, (m, k)), rng.uniform(0, 255, (k, n))
    out = np.full((m, n + 3), np.nan)[:, 1 : n + 1]  # a strided view, as the column bands write
    _resize_blas._matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-13, atol=1e-10)


# ---------------------------------------------------------------- kernel, contributions, rounding


def test_keys_kernel_values():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    np.testing.assert_array_equal(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625])


def test_contributions_for_upscale_by_two_are_the_known_dyadic_weights():
    weights, indices = contributions(4, 8, 2.0)
    assert weights.shape == (8, 4)  # 6 taps, the two all-zero ones dropped
    np.testing.assert_array_equal(weights[0], [-0.0234375, 0.2265625, 0.8671875, -0.0703125])
    np.testing.assert_array_equal(weights[1], [-0.0703125, 0.8671875, 0.2265625, -0.0234375])
    np.testing.assert_array_equal(indices[0], [1, 0, 0, 1])  # half-sample symmetric: ... 1 0 | 0 1 2 3 | 3 2 ...
    np.testing.assert_array_equal(indices[-1], [2, 3, 3, 2])


@pytest.mark.parametrize("in_len, out_len", [(512, 123), (10, 3), (7, 16), (100, 100)])
def test_contribution_weights_sum_to_one_and_stay_in_range(in_len, out_len):
    weights, indices = contributions(in_len, out_len, out_len / in_len)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert indices.min() >= 0 and indices.max() < in_len


def test_to_uint8_rounds_half_away_from_zero_and_clips():
    x = np.array([-3.0, -0.5, 0.49999999999999994, 0.5, 1.5, 2.5, 254.5, 255.5, 300.0, np.nan])
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 0, 1, 2, 3, 255, 255, 255, 0])


def test_to_uint8_equals_exact_rational_rounding_next_to_every_tie():
    ties = np.arange(-2, 258) + 0.5
    x = np.concatenate([ties, np.arange(-2, 258.0), [0.25, 2.0**-1074, 1e300, -1e300, np.inf, -np.inf]])
    for direction in (np.inf, -np.inf):  # four floats either side of each tie and integer
        step = x[: 2 * 260]
        for _ in range(4):
            step = np.nextafter(step, direction)
            x = np.concatenate([x, step])
    finite = x[np.isfinite(x)]
    expected = [min(255, max(0, math.floor(Fraction(v) + Fraction(1, 2)))) for v in finite]
    np.testing.assert_array_equal(to_uint8(finite), expected)
    np.testing.assert_array_equal(to_uint8(np.array([np.inf, -np.inf])), [255, 0])


# ---------------------------------------------------------------- shapes, identity, channels, axis order


def test_identity_at_scale_one_returns_input_unchanged():
    img = _random_image((9, 13, 3))
    np.testing.assert_array_equal(imresize(img, 1), img)
    np.testing.assert_array_equal(imresize(img.astype(np.float64), 1.0), img.astype(np.float64))


def test_output_size_is_ceil_of_scale_times_input():
    assert imresize(_random_image((5, 7)), 0.5).shape == (3, 4)
    assert imresize(_random_image((5, 7, 3)), (2, 0.3)).shape == (10, 3, 3)


def test_up_by_two_then_down_by_two_restores_shape_and_roughly_the_image(lena):
    crop = lena[:64, :96]
    up = imresize(crop, 2)
    assert up.shape == (128, 192, 3)
    down = imresize(up, 0.5)
    assert down.shape == crop.shape
    assert np.abs(down.astype(int) - crop).mean() < 3.0


def test_grey_and_four_channel_inputs_resize_each_channel_alike():
    rgba = _random_image((20, 17, 4), seed=1)
    out = imresize(rgba, output_shape=(11, 30))
    assert out.shape == (11, 30, 4)
    for c in range(4):
        np.testing.assert_array_equal(imresize(rgba[:, :, c], output_shape=(11, 30)), out[:, :, c])


def test_smaller_scale_axis_goes_first_so_transposing_commutes():
    img = _random_image((31, 23), seed=2)
    out = imresize(img, (0.7, 0.35))
    np.testing.assert_array_equal(imresize(img.T.copy(), (0.35, 0.7)), out.T)


def test_imresize_version_is_pinned():
    assert IMRESIZE_VERSION == "1"


# ---------------------------------------------------------------- torch twin


@pytest.mark.parametrize("kwargs", [{"scale": 0.5}, {"scale": 3}, {"output_shape": (13, 41)}])
def test_torch_float64_agrees_with_numpy_float_path(kwargs):
    batch = np.random.default_rng(3).uniform(0, 255, size=(2, 3, 29, 37))
    out = imresize_torch(torch.from_numpy(batch), **kwargs)
    for b in range(2):
        expected = imresize(batch[b].transpose(1, 2, 0), **kwargs).transpose(2, 0, 1)
        np.testing.assert_allclose(out[b].numpy(), expected, rtol=0, atol=1e-6)


def test_torch_keeps_float32_dtype():
    x = torch.rand(1, 3, 16, 16, dtype=torch.float32) * 255
    out = imresize_torch(x, 0.25)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 4, 4)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "img, kwargs, words",
    [
        (np.zeros((2, 3, 4, 5), np.uint8), {"scale": 2}, "shape"),
        (np.zeros((0, 3), np.uint8), {"scale": 2}, "shape"),
        (np.zeros((4, 4), np.int16), {"scale": 2}, "dtype"),
        (np.zeros((4, 4), np.uint8), {}, "exactly one"),
        (np.zeros((4, 4), np.uint8), {"scale": 2, "output_shape": (8, 8)}, "exactly one"),
        (np.zeros((4, 4), np.uint8), {"scale": -1}, "scale"),
        (np.zeros((4, 4), np.uint8), {"scale": float("nan")}, "scale"),
        (np.zeros((4, 4), np.uint8), {"scale": (1, 2, 3)}, "scale"),
        (np.zeros((4, 4), np.uint8), {"output_shape": (0, 3)}, "output_shape"),
        (np.zeros((4, 4), np.uint8), {"output_shape": (2.5, 3)}, "output_shape"),
    ],
)
def test_bad_input_raises_one_line_tinysr_error(img, kwargs, words):
    with pytest.raises(TinySRError, match=words) as info:
        imresize(img, **kwargs)
    assert "\n" not in str(info.value)


def test_torch_rejects_integer_tensors():
    with pytest.raises(TinySRError, match="float"):
        imresize_torch(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 2)
