"""Tests for tinysr.data.codecs: Pillow round trips byte for byte, the seeded per-image quality draw, bad stages."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, features

from tinysr.data.codecs import CodecStage, parse_codec_stage, round_trip
from tinysr.errors import TinySRError


def _image(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _pillow(img: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize(("codec", "fmt"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_round_trip_is_pillow_s_byte_for_byte(codec, fmt):
    img = _image()
    out = round_trip(img, codec=codec, quality=60)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, _pillow(img, fmt, 60))
    assert not np.array_equal(out, img)  # lossy


def test_jpeg_uses_4_2_0_chroma_subsampling():
    buf = io.BytesIO()
    Image.fromarray(_image()).save(buf, format="JPEG", quality=75)
    from PIL import JpegImagePlugin

    assert JpegImagePlugin.get_sampling(Image.open(buf)) == 2  # 2 = 4:2:0, Pillow's default


def test_parse_fixed_and_range():
    assert parse_codec_stage("jpeg75") == CodecStage("jpeg", 75, 75)
    assert parse_codec_stage("webp30-95") == CodecStage("webp", 30, 95)
    assert not parse_codec_stage("jpeg1").is_random and parse_codec_stage("jpeg1-100").is_random


def test_range_draw_is_pinned_deterministic_and_differs_across_images():
    stage = parse_codec_stage("jpeg30-95")
    names = ["baby", "bird", "butterfly", "head", "woman"]
    assert [stage.quality_for(seed=0, image_id=n) for n in names] == [61, 70, 72, 51, 80]
    assert [stage.quality_for(seed=1, image_id=n) for n in names] == [49, 47, 74, 56, 89]
    draws = [stage.quality_for(seed=0, image_id=str(i)) for i in range(200)]
    assert min(draws) == 30 and max(draws) == 95  # inclusive bounds


@pytest.mark.parametrize(("text", "message"), [
    ("png5", "unknown stage 'png5'"), ("jpeg0", "quality 0 in 'jpeg0' is outside 1-100"),
    ("jpeg101", "quality 101"), ("jpeg30-", "malformed quality in 'jpeg30-'"), ("jpeg-5", "malformed"),
    ("jpeg95-30", "runs backwards"), ("", "unknown stage ''"),
])
def test_bad_stages_are_one_line_errors_naming_the_option(text, message):
    with pytest.raises(TinySRError, match=message) as info:
        parse_codec_stage(text, option="--degradation")
    assert str(info.value).startswith("--degradation: ") and "\n" not in str(info.value)


def test_avif_where_pillow_has_it_else_one_line_error():
    if features.check("avif"):
        out = parse_codec_stage("avif50").apply(_image(), seed=0, image_id="x")
        assert out.shape == (40, 56, 3) and out.dtype == np.uint8
    else:
        with pytest.raises(TinySRError, match="--degradation: avif needs a Pillow built with AVIF"):
            parse_codec_stage("avif50")


def test_non_rgb_input_is_refused():
    with pytest.raises(TinySRError, match="HWC RGB uint8"):
        round_trip(np.zeros((8, 8, 4), np.uint8), codec="jpeg", quality=75)
