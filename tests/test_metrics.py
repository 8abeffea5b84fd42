"""PSNR, SSIM and the two named protocols, against hand-computed values and scikit-image."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from tinysr.color import rgb_to_y
from tinysr.metrics import PROTOCOLS, measure, prepare_pair, psnr, quantize, ssim


def test_psnr_of_a_known_mse():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 255.0 / 100)  # mse = 2.55**2 -> 10*log10(255**2 / 2.55**2) = 40 dB
    assert psnr(a, b) == pytest.approx(40.0, abs=1e-12)
    assert psnr(a, a) == float("inf")


def _pair(seed=0, shape=(40, 36, 3)):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, shape, dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 8, shape), 0, 255)
    return sr, hr


def test_ssim_matches_scikit_image_gaussian_wang():
    sr, hr = _pair()
    y_sr, y_hr = rgb_to_y(quantize(sr)), rgb_to_y(hr)
    ref = structural_similarity(y_sr, y_hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255)
    assert ssim(y_sr, y_hr) == pytest.approx(ref, abs=1e-10)


def test_ssim_of_identical_images_is_one():
    _, hr = _pair(1)
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)


def test_standard_protocol_crops_the_border_and_uses_y():
    sr, hr = _pair(2)
    a, b = prepare_pair(sr, hr, scale=3, protocol=PROTOCOLS["standard"])
    assert a.shape == (34, 30)
    np.testing.assert_allclose(b, rgb_to_y(hr)[3:-3, 3:-3])


def test_study_protocol_is_rgb_without_crop():
    sr, hr = _pair(3)
    p, _ = measure(sr, hr, scale=2, protocol=PROTOCOLS["study"])
    assert p == pytest.approx(psnr(quantize(sr), hr), abs=1e-12)


def test_a_border_error_counts_only_under_study():
    hr = np.full((20, 20, 3), 128, np.uint8)
    sr = hr.astype(np.float64)
    sr[0, :, :] = 0  # damage only the top row
    assert measure(sr, hr, scale=2, protocol=PROTOCOLS["standard"])[0] == float("inf")
    assert measure(sr, hr, scale=2, protocol=PROTOCOLS["study"])[0] == pytest.approx(10 * np.log10(255**2 / (128**2 / 20)))


def test_quantize_rounds_and_clips():
    np.testing.assert_array_equal(quantize(np.array([-3.0, 0.4, 0.6, 254.7, 300.0])), [0, 0, 1, 255, 255])


def test_protocol_is_described():
    assert "Y (MATLAB rgb2ycbcr" in PROTOCOLS["standard"].describe(4)
    assert "4-pixel border crop" in PROTOCOLS["standard"].describe(4)
    assert "no border crop" in PROTOCOLS["study"].describe(2)
