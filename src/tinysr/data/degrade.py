"""Named degradations: how an LR training/evaluation image is made from its HR image.

Convention: every function here takes and returns HWC RGB uint8 numpy arrays (0..255). A degradation is a
function ``(hr, scale) -> lr`` with ``lr.shape == (h // scale, w // scale, c)``; callers mod-crop HR first
(`mod_crop`) so that HR is exactly ``scale`` times LR. The functions mod-crop again themselves, so an HR image that
is not a multiple of ``scale`` still gives LR of size ``floor(h / scale)`` = ``ceil(h' / scale)`` of the cropped h'.

The registry of first (resize) stages is the visible dict `DEGRADATIONS`. A degradation's name is a pipeline:
a resize stage, then zero or more codec stages joined by ``+`` (`tinysr.data.codecs`), e.g. ``bicubic``,
``bicubic+jpeg75``, ``bicubic+jpeg30-95``, ``bicubic+webp75``. `parse_degradation(name)` checks a name and returns
its `Pipeline`; `degrade(hr, scale, name, seed=, image_id=)` applies it. The codec runs on the whole LR image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tinysr.data.codecs import CodecStage, parse_codec_stage
from tinysr.errors import TinySRError
from tinysr.resize import imresize, to_uint8

Degradation = Callable[[np.ndarray, int], np.ndarray]


def _check_image(img: np.ndarray, *, what: str = "image") -> None:
    """Raise unless `img` is HWC uint8 (the I/O convention)."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.dtype != np.uint8:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise TinySRError(f"{what} must be an HWC uint8 array, got {desc}")


def _check_scale(scale: int, img: np.ndarray) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise TinySRError(f"scale must be a positive int, got {scale!r}")
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise TinySRError(f"image of size {h}x{w} is smaller than scale x{scale}")


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of `scale` (a view, no copy). HWC in, HWC out."""
    _check_image(img)
    _check_scale(scale, img)
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _lr_shape(hr: np.ndarray, scale: int) -> tuple[int, int]:
    return hr.shape[0] // scale, hr.shape[1] // scale


def bicubic(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``im2uint8(imresize(im2double(hr), 1/scale))``: bicubic with antialiasing, float path, one rounding.

    The default degradation and the study's. We pass the output size rather than 1/scale: for a mod-cropped image
    MATLAB's per-axis scale out/in equals 1/scale exactly (IEEE division of integers is correctly rounded), and the
    explicit size avoids ``ceil(h * (1/3))`` landing one pixel high in floating point.
    """
    hr = mod_crop(hr, scale)
    return to_uint8(imresize(hr.astype(np.float64), output_shape=_lr_shape(hr, scale)))


def bicubic_uint8(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale)`` on uint8 input: the uint8 path (MATLAB rounds after each 1-D pass)."""
    hr = mod_crop(hr, scale)
    return imresize(hr, output_shape=_lr_shape(hr, scale))


def pil_bicubic(hr: np.ndarray, scale: int) -> np.ndarray:
    """Pillow ``Image.resize(BICUBIC)`` (a = -0.5, antialiased support, 8-bit fixed-point per-pass rounding)."""
    hr = mod_crop(hr, scale)
    h, w = _lr_shape(hr, scale)
    channels = [Image.fromarray(np.ascontiguousarray(hr[..., c])) for c in range(hr.shape[2])]
    # Per channel in mode "L" so any channel count works; Pillow resizes channels independently anyway.
    return np.stack([np.asarray(ch.resize((w, h), Image.Resampling.BICUBIC)) for ch in channels], axis=-1)


def cv2_area(hr: np.ndarray, scale: int) -> np.ndarray:
    """Box averaging over ``scale x scale`` blocks: OpenCV ``resize(INTER_AREA)`` for an integer factor.

    For integer factors OpenCV takes its ``resizeAreaFast`` path, which is exactly a block mean; we do it with a
    numpy reshape-mean instead of adding an opencv dependency. Rounding follows that path: at x2 its SIMD kernel
    computes ``(sum + 2) >> 2`` (ties round up); at other factors it computes ``saturate_cast<uchar>(sum * (1/area))``,
    which rounds ties to even. (Matched against OpenCV's source, not against cv2 itself, which is not installed.)
    """
    hr = mod_crop(hr, scale)
    h, w = _lr_shape(hr, scale)
    c = hr.shape[2]
    block_sums = hr.reshape(h, scale, w, scale, c).sum(axis=(1, 3), dtype=np.int64)
    area = scale * scale
    if scale == 2:
        return ((block_sums + 2) >> 2).astype(np.uint8)
    return np.rint(block_sums / area).astype(np.uint8)


def nearest(hr: np.ndarray, scale: int) -> np.ndarray:
    """Pick one HR pixel per LR pixel: source index ``floor((i + 0.5) * scale) = i * scale + scale // 2``.

    That is the pixel whose centre is nearest the LR pixel centre (the lower-right of the middle four when `scale`
    is even). It equals Pillow's ``Image.NEAREST`` and OpenCV's ``INTER_NEAREST_EXACT``; OpenCV's plain
    ``INTER_NEAREST`` would pick ``floor(i * scale)``, the top-left pixel of each block, instead.
    """
    hr = mod_crop(hr, scale)
    offset = scale // 2
    return np.ascontiguousarray(hr[offset::scale, offset::scale])


DEGRADATIONS: dict[str, Degradation] = {
    "bicubic": bicubic,
    "bicubic-uint8": bicubic_uint8,
    "pil-bicubic": pil_bicubic,
    "cv2-area": cv2_area,
    "nearest": nearest,
}


def list_degradations() -> list[str]:
    """The names `degrade` accepts, in registry order."""
    return list(DEGRADATIONS)


@dataclass(frozen=True)
class Pipeline:
    """A parsed degradation name: one resize stage (a key of `DEGRADATIONS`), then codec stages in order."""

    name: str
    resize: str
    codecs: tuple[CodecStage, ...] = ()

    @property
    def is_random(self) -> bool:
        """True when some stage draws its quality per image (the seed then matters)."""
        return any(stage.is_random for stage in self.codecs)

    def __call__(self, hr: np.ndarray, scale: int, *, seed: int = 0, image_id: str = "") -> np.ndarray:
        """LR of `hr` (HWC RGB uint8): resize down by `scale`, then each codec round trip on the whole LR image."""
        lr = DEGRADATIONS[self.resize](hr, scale)
        for position, stage in enumerate(self.codecs):
            lr = stage.apply(lr, seed=seed, image_id=image_id, position=position)
        return lr


def parse_degradation(name: str, *, option: str = "--degradation") -> Pipeline:
    """Check a degradation name (``bicubic``, ``bicubic+jpeg30-95``, ...) and return its Pipeline.

    Torch-free, so the CLI's grammar may call it while parsing; a bad name is a one-line TinySRError naming `option`.
    """
    first, *rest = str(name).split("+")
    if first not in DEGRADATIONS:
        raise TinySRError(f"{option}: unknown degradation {first!r}; choose one of: {', '.join(DEGRADATIONS)}, "
                          f"optionally followed by codec stages such as +jpeg75 or +jpeg30-95")
    return Pipeline(name=name, resize=first, codecs=tuple(parse_codec_stage(s, option=option) for s in rest))


def degrade(hr: np.ndarray, scale: int, name: str = "bicubic", *, seed: int = 0, image_id: str = "") -> np.ndarray:
    """Make the LR image of `hr` (HWC RGB uint8) with the named degradation; returns HWC RGB uint8, HR/scale.

    `seed` and `image_id` (the image's file stem) fix the quality that a range stage (``jpeg30-95``) draws.
    """
    pipeline = parse_degradation(name)
    _check_image(hr, what="HR image")
    lr = pipeline(hr, scale, seed=seed, image_id=image_id)
    assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, hr.shape[2]) and lr.dtype == np.uint8
    return lr


def shrink_hr(hr: np.ndarray, factor: int) -> np.ndarray:
    """The study's Table I size variants: MATLAB ``imresize(hr, 1/factor)`` on the float path, then to uint8.

    HWC RGB uint8 in and out; the output size is MATLAB's ``ceil(h / factor) x ceil(w / factor)``. factor 1 returns
    `hr` unchanged. (1/2 and 1/4 are exact in binary, so passing the scale reproduces MATLAB's size and kernel.)
    """
    _check_image(hr, what="HR image")
    if factor == 1:
        return hr
    _check_scale(factor, hr)
    return to_uint8(imresize(hr.astype(np.float64), 1 / factor))
