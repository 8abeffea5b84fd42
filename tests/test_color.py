"""MATLAB rgb2ycbcr: exact values at the corners of the RGB cube, and the inverse."""

import numpy as np
import pytest

from tinysr.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.mark.parametrize(
    ("rgb", "ycbcr"),
    [
        ((0, 0, 0), (16.0, 128.0, 128.0)),
        ((255, 255, 255), (235.0, 128.0, 128.0)),
        ((255, 0, 0), (81.481, 90.203, 240.0)),
        ((0, 255, 0), (144.553, 53.797, 34.214)),
        ((0, 0, 255), (40.966, 240.0, 109.786)),
    ],
)
def test_matlab_values(rgb, ycbcr):
    img = np.array(rgb, dtype=np.uint8).reshape(1, 1, 3)
    np.testing.assert_allclose(rgb_to_ycbcr(img)[0, 0], ycbcr, atol=1e-9)
    assert rgb_to_y(img)[0, 0] == pytest.approx(ycbcr[0], abs=1e-9)


def test_round_trip():
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(img)), img, atol=1e-9)


def test_rejects_non_rgb():
    with pytest.raises(ValueError, match="HWC RGB"):
        rgb_to_y(np.zeros((4, 4), np.uint8))
