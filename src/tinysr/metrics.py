"""PSNR and SSIM under named evaluation protocols.

A protocol is a named constant, printed in every report, never inferred from the dataset:

- ``standard``: the field's benchmark protocol. HR mod-cropped to the scale; SR rounded to uint8; the Y channel of
  MATLAB `rgb2ycbcr` (BT.601, 16..235, unrounded float); `scale` pixels cropped from each border.
- ``study``: the study's own validation. HR mod-cropped; SR rounded to uint8; RGB; no border crop; the mean of the
  per-image PSNR.

SSIM is Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, over the
"valid" region (as MATLAB's `ssim_index` and BasicSR compute it); on RGB, the mean over channels.

Convention: `sr` and `hr` are HWC RGB arrays in 0..255 of the same shape; `sr` may be float (it is rounded here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysr.color import rgb_to_y


@dataclass(frozen=True)
class Protocol:
    name: str
    channel: str  # "y" (MATLAB rgb2ycbcr luma) or "rgb"
    crop_border: bool  # crop `scale` pixels from each border
    quantize: bool  # round SR to uint8 before measuring

    def describe(self, scale: int) -> str:
        crop = f"{scale}-pixel border crop" if self.crop_border else "no border crop"
        quant = "SR rounded to uint8" if self.quantize else "SR unrounded"
        chan = "Y (MATLAB rgb2ycbcr, BT.601)" if self.channel == "y" else "RGB"
        return f"protocol {self.name}: {chan}, {crop}, {quant}, HR mod-cropped to x{scale}, mean over images"


PROTOCOLS: dict[str, Protocol] = {
    "standard": Protocol("standard", channel="y", crop_border=True, quantize=True),
    "study": Protocol("study", channel="rgb", crop_border=False, quantize=True),
}


def quantize(img: np.ndarray) -> np.ndarray:
    """Round half to even (numpy, as `np.round`) and clip to 0..255 uint8; MATLAB's im2uint8 differs only at .5,
    which a float network output never hits in practice."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def psnr(sr: np.ndarray, hr: np.ndarray, *, peak: float = 255.0) -> float:
    """PSNR in dB of two arrays of one shape (any layout), on the 0..peak scale; inf if identical."""
    mse = np.mean((sr.astype(np.float64) - hr.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D float64 image with the 1-D window g along both axes."""
    rows = np.lib.stride_tricks.sliding_window_view(img, g.size, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, g.size, axis=1) @ g


def ssim_2d(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> float:
    """SSIM of two 2-D images (Wang et al.), mean over the valid region."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    g = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim(sr: np.ndarray, hr: np.ndarray) -> float:
    """SSIM of HW or HWC arrays in 0..255; for HWC, the mean over channels."""
    if sr.ndim == 2:
        return ssim_2d(sr, hr)
    return float(np.mean([ssim_2d(sr[..., c], hr[..., c]) for c in range(sr.shape[2])]))


def prepare_pair(sr: np.ndarray, hr: np.ndarray, *, scale: int, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """Apply a protocol's quantisation, channel and border crop to an (SR, HR) pair of HWC RGB images."""
    if sr.shape != hr.shape or sr.ndim != 3 or sr.shape[2] != 3:
        raise ValueError(f"SR {sr.shape} and HR {hr.shape} must be HWC RGB of one shape")
    if protocol.quantize:
        sr = quantize(sr)
    if protocol.channel == "y":
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    else:
        sr, hr = sr.astype(np.float64), hr.astype(np.float64)
    if protocol.crop_border:
        sr, hr = sr[scale:-scale, scale:-scale], hr[scale:-scale, scale:-scale]
    return sr, hr


def measure(sr: np.ndarray, hr: np.ndarray, *, scale: int, protocol: Protocol) -> tuple[float, float]:
    """(PSNR, SSIM) of one SR image against its mod-cropped HR under a protocol."""
    sr, hr = prepare_pair(sr, hr, scale=scale, protocol=protocol)
    return psnr(sr, hr), ssim(sr, hr)
