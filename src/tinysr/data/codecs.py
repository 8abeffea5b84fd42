"""Codec stages of a degradation: encode the whole LR image with a lossy codec, decode it back.

Convention: HWC RGB uint8 (0..255) in and out, same shape. A stage is written ``jpeg75`` (fixed quality) or
``jpeg30-95`` (a quality per image, drawn uniformly from 30..95 inclusive). The draw is deterministic: it depends
only on the seed, the image's id (its file stem) and the stage's position, so a cache entry, a validation split and
an evaluation of the same image all see the same quality. Pillow is the codec: JPEG with its default 4:2:0 chroma
subsampling, lossy WebP, and AVIF where the installed Pillow has it (`PIL.features.check("avif")`).

Torch-free: `tinysr.cli.parser` may parse a stage while validating options.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from tinysr.errors import TinySRError

#: stage prefix -> Pillow format name
CODECS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
_STAGE = re.compile(r"^(?P<codec>[a-z]+)(?P<lo>\d+)(?:-(?P<hi>\d+))?$")


@dataclass(frozen=True)
class CodecStage:
    """One lossy round trip: `codec` (a key of `CODECS`) at a quality in ``quality_lo..quality_hi`` (1..100)."""

    codec: str
    quality_lo: int
    quality_hi: int

    @property
    def is_random(self) -> bool:
        return self.quality_lo != self.quality_hi

    def quality_for(self, *, seed: int, image_id: str, position: int = 0) -> int:
        """The quality of this stage for one image: fixed, or drawn from (seed, image id, stage position)."""
        if not self.is_random:
            return self.quality_lo
        digest = hashlib.sha256(f"{image_id}\0{position}".encode()).digest()
        rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
        return int(rng.integers(self.quality_lo, self.quality_hi + 1))

    def apply(self, lr: np.ndarray, *, seed: int, image_id: str, position: int = 0) -> np.ndarray:
        """Encode and decode `lr` (HWC RGB uint8) at this image's quality; returns HWC RGB uint8."""
        quality = self.quality_for(seed=seed, image_id=image_id, position=position)
        return round_trip(lr, codec=self.codec, quality=quality)


def round_trip(img: np.ndarray, *, codec: str, quality: int) -> np.ndarray:
    """Pillow's encoder at `quality`, then its decoder, back to RGB: HWC RGB uint8 (3 channels) in and out."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise TinySRError(f"{codec}: codec stages need HWC RGB uint8 images, got {img.dtype} {img.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format=CODECS[codec], quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _check_available(codec: str, *, option: str) -> None:
    if codec == "avif" and not features.check("avif"):
        raise TinySRError(f"{option}: avif needs a Pillow built with AVIF support (this one has none)")


def _check_quality(value: int, *, text: str, option: str) -> None:
    if not 1 <= value <= 100:
        raise TinySRError(f"{option}: quality {value} in {text!r} is outside 1-100")


def parse_codec_stage(text: str, *, option: str = "--degradation") -> CodecStage:
    """``jpeg75`` / ``webp30-95`` / ``avif50`` -> CodecStage; a one-line TinySRError naming `option` otherwise."""
    match = _STAGE.match(text)
    if match is None and any(text.startswith(c) for c in CODECS):
        raise TinySRError(f"{option}: malformed quality in {text!r}; write e.g. jpeg75 or jpeg30-95")
    if match is None or match["codec"] not in CODECS:
        raise TinySRError(f"{option}: unknown stage {text!r}; codec stages are "
                          f"{', '.join(c + 'Q' for c in CODECS)} or a range such as jpeg30-95")
    codec, lo = match["codec"], int(match["lo"])
    hi = int(match["hi"]) if match["hi"] is not None else lo
    for value in (lo, hi):
        _check_quality(value, text=text, option=option)
    if lo > hi:
        raise TinySRError(f"{option}: quality range {text!r} runs backwards (write {codec}{hi}-{lo})")
    _check_available(codec, option=option)
    return CodecStage(codec=codec, quality_lo=lo, quality_hi=hi)
