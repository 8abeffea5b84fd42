"""Tests for tinysr.data.degrade: sizes, exact pixel rules, pinned bicubic values on real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinysr.data.degrade import DEGRADATIONS, degrade, list_degradations, mod_crop, parse_degradation, shrink_hr
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.metrics import PROTOCOLS, prepare_pair, psnr
from tinysr.resize import imresize, to_uint8

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / os.environ.get("TINYSR_DATA", "../shared/data")).resolve()


def _random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bird() -> np.ndarray:
    return read_image(DATA / "Set5" / "bird.png")[0]  # 288x288


def test_registry_names():
    assert list_degradations() == ["bicubic", "bicubic-uint8", "pil-bicubic", "cv2-area", "nearest"]


@pytest.mark.parametrize("name", list(DEGRADATIONS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_size_dtype_and_constant_image(name, scale):
    lr = degrade(_random_image(37, 50), scale, name)  # not a multiple of the scale: mod-cropped first
    assert lr.shape == (37 // scale, 50 // scale, 3) and lr.dtype == np.uint8
    flat = np.full((24, 36, 3), 77, np.uint8)
    assert (degrade(flat, scale, name) == 77).all()


def test_mod_crop_is_a_view_of_the_top_left():
    img = _random_image(37, 50)
    out = mod_crop(img, 4)
    assert out.shape == (36, 48, 3) and np.shares_memory(out, img) and (out == img[:36, :48]).all()
    assert mod_crop(img[:36, :48], 4).shape == (36, 48, 3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pil_bicubic_matches_pillow_rgb(scale):
    img = _random_image(48, 60, seed=scale)
    ref = np.asarray(Image.fromarray(img).resize((60 // scale, 48 // scale), Image.Resampling.BICUBIC))
    assert (degrade(img, scale, "pil-bicubic") == ref).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_nearest_picks_centre_pixel_like_pillow(scale):
    img = _random_image(48, 60, seed=10 + scale)
    lr = degrade(img, scale, "nearest")
    ref = np.asarray(Image.fromarray(img).resize((60 // scale, 48 // scale), Image.Resampling.NEAREST))
    assert (lr == ref).all()
    assert (lr[1, 2] == img[scale + scale // 2, 2 * scale + scale // 2]).all()  # floor((i + 0.5) * scale)


def test_cv2_area_block_means_and_opencv_rounding():
    # x2: OpenCV's (sum + 2) >> 2, ties up: block 1,2,3,4 -> 10/4 = 2.5 -> 3; block 0,0,0,1 -> 0.25 -> 0.
    img = np.zeros((2, 4, 3), np.uint8)
    img[:, :2, 0] = [[1, 2], [3, 4]]
    img[1, 3, 0] = 1
    assert degrade(img, 2, "cv2-area")[0, :, 0].tolist() == [3, 0]
    # x4: sum * (1/16) rounded half to even: 40/16 = 2.5 -> 2, 56/16 = 3.5 -> 4, 41/16 -> 3.
    img = np.zeros((4, 12, 3), np.uint8)
    for block, total in enumerate([40, 56, 41]):
        img[0, 4 * block, 1] = total
    assert degrade(img, 4, "cv2-area")[0, :, 1].tolist() == [2, 4, 3]
    # x3: an exact mean of 9 pixels.
    img = _random_image(9, 9)
    expect = np.rint(img.reshape(3, 3, 3, 3, 3).astype(np.float64).mean(axis=(1, 3)))
    assert (degrade(img, 3, "cv2-area") == expect).all()


@pytest.mark.parametrize(
    "name, scale, total, pixel",
    [  # pinned: sum of all LR values of Set5 bird, and the pixel at row 10, column 20
        ("bicubic", 2, 4219856, [108, 117, 6]),
        ("bicubic", 3, 1875433, [54, 81, 3]),
        ("bicubic", 4, 1054978, [6, 39, 12]),
        ("bicubic-uint8", 2, 4220053, [108, 118, 6]),
        ("bicubic-uint8", 4, 1055047, [6, 39, 12]),
    ],
)
def test_bicubic_pinned_on_bird(bird, name, scale, total, pixel):
    lr = degrade(bird, scale, name)
    assert int(lr.astype(np.int64).sum()) == total and lr[10, 20].tolist() == pixel


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_output_shape_equals_matlab_one_over_scale(bird, scale):
    """`bicubic` passes the output size; for exact binary 1/scale it must equal imresize(x, 1/scale) bit for bit."""
    ref = to_uint8(imresize(bird.astype(np.float64), 1 / scale))
    assert (degrade(bird, scale, "bicubic") == ref).all()


def test_float_and_uint8_paths_differ_by_at_most_one(bird):
    a = degrade(bird, 3, "bicubic").astype(int)
    b = degrade(bird, 3, "bicubic-uint8").astype(int)
    assert np.abs(a - b).max() == 1 and 0 < (a != b).mean() < 0.2


def test_set5_x2_bicubic_baseline_psnr():
    """Down with `bicubic`, back up with imresize: 33.68 dB on Set5 x2 under `standard` (the literature's 33.66
    rounds Y to uint8 first)."""
    values = []
    for path in sorted((DATA / "Set5").glob("*.png")):
        hr = mod_crop(read_image(path)[0], 2)
        sr = to_uint8(imresize(degrade(hr, 2, "bicubic").astype(np.float64), output_shape=hr.shape[:2]))
        values.append(psnr(*prepare_pair(sr, hr, scale=2, protocol=PROTOCOLS["standard"])))
    assert np.mean(values) == pytest.approx(33.6818, abs=1e-3)


def test_shrink_hr_sizes_and_pinned_values():
    img = read_image(DATA / "BSD100" / "3096.png")[0]  # 321x481: odd sizes round up as in MATLAB
    half, quarter = shrink_hr(img, 2), shrink_hr(img, 4)
    assert half.shape == (161, 241, 3) and quarter.shape == (81, 121, 3)
    assert int(half.astype(np.int64).sum()) == 14016273 and half[5, 7].tolist() == [131, 134, 141]
    assert int(quarter.astype(np.int64).sum()) == 3538513 and quarter[5, 7].tolist() == [132, 132, 143]
    assert shrink_hr(img, 1) is img


def test_unknown_degradation_lists_names():
    with pytest.raises(TinySRError, match=r"unknown degradation 'lanczos'; choose one of: bicubic, bicubic-uint8"):
        degrade(_random_image(8, 8), 2, "lanczos")


@pytest.mark.parametrize(
    "img, scale, message",
    [
        (np.zeros((8, 8, 3), np.float32), 2, "HWC uint8"),
        (np.zeros((8, 8), np.uint8), 2, "HWC uint8"),
        (np.zeros((3, 8, 3), np.uint8), 4, "smaller than scale x4"),
        (np.zeros((8, 8, 3), np.uint8), 0, "positive int"),
        (np.zeros((8, 8, 3), np.uint8), 2.0, "positive int"),
    ],
)
def test_bad_input(img, scale, message):
    with pytest.raises(TinySRError, match=message):
        degrade(img, scale, "bicubic")


# ---------------------------------------------------------------- pipelines: a resize stage, then codec stages
def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_bicubic_jpeg75_is_pillow_s_round_trip_of_the_bicubic_lr(bird):
    lr = degrade(bird, 2, "bicubic+jpeg75")
    np.testing.assert_array_equal(lr, _jpeg(degrade(bird, 2, "bicubic"), 75))
    assert int(lr.astype(np.int64).sum()) == 4237954 and lr[5, 7].tolist() == [21, 50, 6]


def test_range_uses_the_image_s_drawn_quality(bird):
    quality = parse_degradation("bicubic+jpeg30-95").codecs[0].quality_for(seed=0, image_id="bird")
    assert quality == 70
    lr = degrade(bird, 2, "bicubic+jpeg30-95", seed=0, image_id="bird")
    np.testing.assert_array_equal(lr, degrade(bird, 2, "bicubic+jpeg70"))
    assert not np.array_equal(lr, degrade(bird, 2, "bicubic+jpeg30-95", seed=0, image_id="baby"))  # q 61


def test_pipelines_parse_and_compose():
    p = parse_degradation("nearest+jpeg50+webp90")
    assert p.resize == "nearest" and [s.codec for s in p.codecs] == ["jpeg", "webp"] and not p.is_random
    assert parse_degradation("bicubic+jpeg30-95").is_random and parse_degradation("bicubic").codecs == ()
    img = _random_image(32, 24)
    np.testing.assert_array_equal(degrade(img, 2, "cv2-area+jpeg80"), _jpeg(degrade(img, 2, "cv2-area"), 80))


@pytest.mark.parametrize(("name", "message"), [
    ("bicubic+jpeg101", "quality 101"), ("bicubic+gif5", "unknown stage 'gif5'"),
    ("box+jpeg75", "unknown degradation 'box'"), ("bicubic+jpeg9-", "malformed"), ("bicubic+", "unknown stage ''"),
])
def test_bad_pipelines_are_one_line_errors(name, message):
    with pytest.raises(TinySRError, match=message) as info:
        parse_degradation(name)
    assert "\n" not in str(info.value) and str(info.value).startswith("--degradation: ")
