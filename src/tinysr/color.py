"""Colour conversions as MATLAB's `rgb2ycbcr` does them (ITU-R BT.601, studio swing).

Convention: inputs are HWC RGB arrays in 0..255 (uint8 or float); outputs are float64 in 0..255 space, unrounded:
Y in 16..235 and Cb/Cr in 16..240. This is the Y that the SR benchmark protocol measures (MATLAB applied to a
uint8 image and kept in double, as BasicSR's `to_y_channel` does).
"""

from __future__ import annotations

import numpy as np

# MATLAB rgb2ycbcr: rows map [R, G, B] / 255 to offsets added to (16, 128, 128). Defined here only: the torch ops
# (models.ops), the fused kernels (infer.fused) and the NumPy export build their conversions from these three.
RGB_TO_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)  # maps (YCbCr - offset) to RGB / 255


def _check_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HWC RGB image, got shape {img.shape}")
    return img.astype(np.float64) / 255.0


def rgb_to_ycbcr(img: np.ndarray) -> np.ndarray:
    """HWC RGB 0..255 -> HWC YCbCr float64 (MATLAB `rgb2ycbcr`, unrounded)."""
    return _check_rgb(img) @ RGB_TO_YCBCR.T + YCBCR_OFFSET


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HWC RGB 0..255 -> HW luma Y float64 in 16..235 (MATLAB `rgb2ycbcr(...)(:,:,1)`, unrounded)."""
    return _check_rgb(img) @ RGB_TO_YCBCR[0] + YCBCR_OFFSET[0]


def ycbcr_to_rgb(img: np.ndarray) -> np.ndarray:
    """HWC YCbCr (MATLAB ranges) -> HWC RGB float64 0..255, unrounded and unclipped (MATLAB `ycbcr2rgb`)."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HWC YCbCr image, got shape {img.shape}")
    return (img.astype(np.float64) - YCBCR_OFFSET) @ YCBCR_TO_RGB.T * 255.0
