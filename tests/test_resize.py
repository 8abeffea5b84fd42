"""tinysr.resize: MATLAB-exact bicubic imresize (numpy uint8/float paths) and its torch twin."""

import hashlib
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
SET5 = DATA / "Set5"


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


def _reference_imresize(img: np.ndarray, scale=None, output_shape=None, *, contributions=contributions) -> np.ndarray:
    """The slow oracle: MATLAB's algorithm written plainly, float64, taps summed left to right per pass; the
    per-axis `contributions` are tinysr's (R2015b's symmetric padding) unless given."""
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


# ---------------------------------------------------------------- MATLAB's x2, x3, x4 upscales of Set5 (the anchor)
#
# Where the numbers come from. SelfExSR's Set5 release (Huang et al., CVPR 2015; the zip linked from the README of
# github.com/jbhuang0604/SelfExSR) holds, per image and scale s, the mod-cropped HR, `img_NNN_SRF_s_LR.png` and
# `img_NNN_SRF_s_bicubic.png`, made with MATLAB's imresize. Its HR and LR files are in jbhuang0604/SelfExSR @ 8f6dd8c1d20c
# (`data/Set5/image_SRF_{2,3,4}/`); the bicubic ones, with the same HR and LR git blobs, are in
# satoshi-kosugi/DeepImagePrior @ 47d99b0e7b205c93d9f8087309213922041e04bc
# (`dataset/super_resolution/Set5/image_SRF_{2,3,4}/img_00{1..5}_SRF_{s}_{LR,bicubic}.png`; 001..005 are baby, bird,
# butterfly, head, woman). The images are not copied here: the digests below are sha256 of their decoded RGB pixel
# bytes (HxWx3 uint8, C order) and the rows are copied from them.
#
# How MATLAB made them, found from the files (every pixel of all 15 LR and 15 bicubic files):
# - LR = imresize(HR, 1/s) and bicubic = imresize(LR, s), on uint8 RGB (each channel alone, no YCbCr step), the
#   uint8 path: rounded after each pass. The float path of the same LR, rounded once, differs on 9-22% of the values.
# - With an imresize.m of the kind that clamps out-of-range indices ("Clamp out-of-range indices; has the effect of
#   replicating end-points", copyright 1992-2006): replicate padding. R2015b, which `tinysr.resize` follows (the
#   lena goldens above), mirrors half-sample symmetrically. So tinysr's upscale equals MATLAB's everywhere but the
#   outputs whose kernel reaches past the edge: the outer `EDGE[s]` rows and columns; the oracle below with clamped
#   indices gives every file exactly.
#: (scale, image) -> (sha256 of MATLAB's LR pixels, sha256 of MATLAB's bicubic x`scale` upscale of that LR)
SELFEXSR_DIGESTS = {
    (2, "baby"): ("f57e118ca033107eb17d29ab651514fd00fc9614e128fdc9df42ed0407912a9a",
                  "5d038845ecb8ae7f4595b20ff1f444423a9fe60da711a43e27b4debafa020b8b"),
    (2, "bird"): ("d83403c53ed9165d4cb7c8ad5d2d903a8331cc3bd56b4455318371f13a3c3ff3",
                  "3b3fedf30e201ca8557616c53d1791c02776ebeeef7dbaec112fcdb690a2f40d"),
    (2, "butterfly"): ("fdd21057c7708085184783bbd5e618a381937cb150b1384ebdecc8cf8f15d024",
                       "3f3587633b93635e1630779c036888bc2329b01a88829f4822a61e1d5622db50"),
    (2, "head"): ("05f7d762cd1518691824cf42e2e790715b4b40d7594f3473acf5de812909c4fc",
                  "0a416312213eba24e88ed0ffd515ae272ecac1b2293b50ac40a612965da4379a"),
    (2, "woman"): ("90ff7087854018d1db1fa209f1fbcbc65099d671ea54d4e7c86207c0871ca12d",
                   "2f92592d1badd00925ebf0a73dd5dc2d43dbcab8067247db82cdd8f400f6138d"),
    (3, "baby"): ("f6e0417646a2b4a534fb1172ffd97dbe6598e90e171fa0e87ae7c9af7a927669",
                  "fc29f2270baa9fb464f3bfc0f5e6daea608cd1c43a775fe4aac2d25ef75e61a5"),
    (3, "bird"): ("6cce0c3e0339c894639da44acf3799cbcd48b0404c5de18c0bef8a3d3f14788c",
                  "cf1b483a9cf828ae665a61ac8c18047182eb663ab69df05a71e1fb47ab6b2e74"),
    (3, "butterfly"): ("2d0f7d9eb08e11a0892b8eb6e21c7b6d0dfd561d4080f7370276201ca08409fb",
                       "264b68c8254404ad19c8dbc3c86cf87bde1d3057749acc4e0a8dbdeabfd8d9e6"),
    (3, "head"): ("bfbf454e3dda3b1835aaddb4a5fed7e50d0eac1c4007edc535cfa348711cfe48",
                  "8d7f33c3a70b6ee731460f37ee8c4e0b87fd91f9e214b3f875842952779e08f6"),
    (3, "woman"): ("bf94172cf993cac423be41dce6f88c2bc523888e0a35665592b5974e2a91088a",
                   "bfb36f9f5a080336b1c8bf23df17e6e4d716aa9839d93e9fa218fd57cf4a75c6"),
    (4, "baby"): ("08155c10a5fb09256ee15a04d1cbea46331400fb537b1bb5b0697b42b979cf27",
                  "6d458ff3b65f06ff155066fd7a2d3e74f992aa58e3bf7e65b28304552cc587f3"),
    (4, "bird"): ("41763f1c1ab0238c565f4195bd1ece82ac42a6a3d7031fe60a92fc6e280a4c90",
                  "92e03e6b90d9072464949bb3542d09189d6325ce50fcd3c74725d850d832f5f7"),
    (4, "butterfly"): ("44964b84fa42882e6cc0c32824a4d77809f6f4a5e9e8dd3aa27b740d97e972a6",
                       "2d8ebcd6259531dbcc8a9efe0e122deb4e5b3a7904f0873ca42a46e443bead1d"),
    (4, "head"): ("701b5b1c01f0450fa2f9981abb5bbc0370d6ccfd83ece3c23f77f341f42e81be",
                  "b9c357e7fd9313a74c21d24e1490ea1d38d688d5e1d85a984f6b6a0d8cd28256"),
    (4, "woman"): ("5309aa740cc2c8d5ccafd47603b9b799d05c8fba346f0f915801157425328c97",
                   "75f5f220e5e87e0f992af7476a2c1c1b7c0925e1fb11bd326aff36de33dc4702"),
}
#: MATLAB's bicubic butterfly, green channel: (row 109, columns 209..216) inside, (row 1, the same columns) at the
#: edge, per scale, copied from the files.
SELFEXSR_BUTTERFLY_ROWS = {
    2: ([107, 191, 235, 239, 241, 240, 208, 144], [52, 52, 52, 52, 52, 50, 50, 51]),
    3: ([114, 175, 220, 238, 240, 227, 192, 142], [49, 50, 50, 49, 49, 48, 48, 49]),
    4: ([130, 154, 181, 207, 221, 214, 185, 144], [44, 44, 44, 45, 45, 45, 45, 46]),
}
#: Upscaling by s, the outputs whose taps reach past the edge with a non-zero weight, where the padding matters.
EDGE = {2: 1, 3: 1, 4: 2}


def _clamped_contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """`contributions` with indices clamped to the image (replicated edges), as the older imresize.m that made the
    SelfExSR files; the same kernel, weights and dropped all-zero taps."""
    antialias = scale < 1
    kernel_width = 4.0 / scale if antialias else 4.0
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    indices = np.floor(u - kernel_width / 2)[:, None] + np.arange(math.ceil(kernel_width) + 2)
    weights = scale * cubic(scale * (u[:, None] - indices)) if antialias else cubic(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    indices = np.clip(indices.astype(np.int64) - 1, 0, in_len - 1)
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _sha256(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


@pytest.mark.parametrize("scale, name", list(SELFEXSR_DIGESTS))
def test_upscale_matches_matlab_selfexsr_set5_inside_the_edge_and_old_padding_explains_the_edge(scale, name):
    hr = _read_rgb(SET5 / f"{name}.png")
    hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]  # SelfExSR's mod-crop (top-left)
    lr_digest, bicubic_digest = SELFEXSR_DIGESTS[scale, name]
    # MATLAB's LR, rebuilt from our HR with replicated edges: bit for bit the file's pixels
    lr = _reference_imresize(hr, 1 / scale, contributions=_clamped_contributions)
    assert _sha256(lr) == lr_digest
    # MATLAB's upscale of it, with replicated edges: bit for bit the file's pixels
    matlab = _reference_imresize(lr, scale, contributions=_clamped_contributions)
    assert matlab.shape == hr.shape and _sha256(matlab) == bicubic_digest
    # tinysr's upscale (R2015b's symmetric padding) equals it everywhere inside the edge band, and differs on it
    ours, edge = imresize(lr, scale), EDGE[scale]
    inside = (slice(edge, -edge), slice(edge, -edge))
    np.testing.assert_array_equal(ours[inside], matlab[inside])
    assert np.count_nonzero(ours != matlab) > 0


@pytest.mark.parametrize("scale", sorted(SELFEXSR_BUTTERFLY_ROWS))
def test_upscale_matches_matlab_selfexsr_rows(scale):
    hr = _read_rgb(SET5 / "butterfly.png")
    hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
    lr = _reference_imresize(hr, 1 / scale, contributions=_clamped_contributions)
    inside, edge = SELFEXSR_BUTTERFLY_ROWS[scale]
    ours = imresize(lr, scale)[:, :, 1]
    assert ours[109, 209:217].tolist() == inside
    assert _reference_imresize(lr, scale, contributions=_clamped_contributions)[1, 209:217, 1].tolist() == edge
    assert (ours[1, 209:217].tolist() == edge) == (EDGE[scale] <= 1)  # row 1 is in the edge band at x4 only


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
