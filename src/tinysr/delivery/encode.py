"""`tinysr encode`: the sender's half. Downscale and compress an image to fit a byte budget, choosing the scale
(1, 2, 3, 4) and the codec quality that give the receiver (`--model auto`) the best picture.

Steps, per scale s:
1. pad the original's bottom/right edge by replication to a multiple of s, and make LR by MATLAB bicubic
   (`tinysr.data.degrade.bicubic`; s = 1 sends the original);
2. find the highest quality (1..100) whose file, record included, fits the budget: bisection (size grows with
   quality, nearly always), then the next few qualities up, in case size is not monotone there;
3. decode that file with Pillow, upscale it as `tinysr upscale --model auto` will (`tinysr.delivery.auto`), crop to the
   original size, and measure PSNR-Y against the original (`receiver_psnr`).
The candidate with the highest PSNR is written, atomically, with its record (`tinysr.delivery.record`).

Convention: `hr` is HWC RGB uint8 (0..255), the original; PSNR is in dB.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tinysr.atomic import atomic_write_bytes
from tinysr.data.degrade import bicubic
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.delivery.auto import AUTO, SourceInfo, auto_family, estimate_jpeg_quality, upscale_auto
from tinysr.delivery.record import Record, save_options
from tinysr.metrics import PROTOCOLS, prepare_pair, psnr

#: codec name -> (Pillow format, file suffix). WebP is written lossy (its `quality`).
CODECS: dict[str, tuple[str, str]] = {"jpeg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp")}
SCALES = (1, 2, 3, 4)
QUALITIES = range(1, 101)
NEIGHBOURS = 3  # qualities above the bisection's answer that are also tried (size is only monotone-ish)
#: Every candidate is measured on the same pixels: the standard protocol (Y, SR uint8) with the border of the
#: largest scale cropped, so that an x1 candidate is not judged on 3 more border pixels than an x4 one.
PROTOCOL = PROTOCOLS["standard"]
BORDER = max(SCALES)
#: The smallest side an original may have: the PSNR that chooses a candidate needs pixels inside the border.
MIN_SIDE = 2 * BORDER + 1


@dataclass(frozen=True)
class Candidate:
    """One (scale, quality) that fits the budget: its file bytes, the model the receiver uses, the receiver's PSNR."""

    scale: int
    quality: int
    data: bytes
    model: str
    psnr: float

    def describe(self) -> str:
        return f"x{self.scale} q{self.quality}: {len(self.data)} bytes, {self.psnr:.2f} dB with {self.model}"


def receiver_psnr(sr: np.ndarray, hr: np.ndarray) -> float:
    """PSNR-Y (dB) of the receiver's HWC RGB uint8 image against the original: `PROTOCOL`, `BORDER` pixels cropped."""
    sr_y, hr_y = prepare_pair(sr, hr, scale=BORDER, protocol=PROTOCOL)
    return psnr(sr_y, hr_y)


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """HWC RGB uint8 LR of ceil(H/s) x ceil(W/s): edge-replicate pad to a multiple of s, then MATLAB bicubic."""
    if scale == 1:
        return hr
    pad = [(0, -hr.shape[0] % scale), (0, -hr.shape[1] % scale), (0, 0)]
    return bicubic(np.pad(hr, pad, mode="edge"), scale)


def compress(lr: np.ndarray, *, codec: str, quality: int, record: Record) -> bytes:
    """The bytes of `lr` saved by Pillow as `codec` at `quality`, with `record` in the metadata."""
    fmt = CODECS[codec][0]
    buffer = io.BytesIO()
    Image.fromarray(lr).save(buffer, format=fmt, quality=quality, **save_options(fmt, record))
    return buffer.getvalue()


def fit_quality(lr: np.ndarray, *, codec: str, budget: int, record: Record) -> tuple[int, bytes] | None:
    """(quality, bytes) of the highest quality whose file fits `budget`, or None if even quality 1 does not."""
    files: dict[int, bytes] = {}  # quality -> file, each encoded once

    def encoded(q: int) -> bytes:
        if q not in files:
            files[q] = compress(lr, codec=codec, quality=q, record=record)
        return files[q]

    lo, hi = QUALITIES[0], QUALITIES[-1]
    if len(encoded(lo)) > budget:
        return None
    while lo < hi:  # invariant: lo fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(encoded(mid)) <= budget else (lo, mid - 1)
    for q in range(min(lo + NEIGHBOURS, QUALITIES[-1]), lo, -1):
        if len(encoded(q)) <= budget:
            return q, encoded(q)
    return lo, encoded(lo)


def decode(data: bytes) -> np.ndarray:
    """HWC RGB uint8 pixels of an encoded file, as `tinysr.data.io.read_image` gives them."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def jpeg_quality(data: bytes) -> int | None:
    """The quality the receiver will estimate from the file's own quantisation tables (None for a non-JPEG)."""
    with Image.open(io.BytesIO(data)) as im:
        return estimate_jpeg_quality(im.quantization) if im.format == "JPEG" else None


def receive(data: bytes, *, codec: str, record: Record, receiver: str = AUTO) -> tuple[np.ndarray, str]:
    """What `tinysr upscale --model RECEIVER` ("auto", "auto-5k") makes of the file: (HWC RGB uint8 image at the
    original size, model)."""
    info = SourceInfo(path=Path(f"candidate{CODECS[codec][1]}"), format=CODECS[codec][0], lossy=True,
                      quality=jpeg_quality(data), record=record)
    result = upscale_auto(decode(data), info=info, fused=False, family=receiver)
    return result.image, result.model


def candidate(hr: np.ndarray, *, scale: int, codec: str, budget: int, receiver: str = AUTO) -> Candidate | None:
    """The best candidate at `scale` (its highest fitting quality), or None if none fits."""
    record = Record(scale=scale, width=hr.shape[1], height=hr.shape[0])
    fitted = fit_quality(make_lr(hr, scale), codec=codec, budget=budget, record=record)
    if fitted is None:
        return None
    quality, data = fitted
    sr, model = receive(data, codec=codec, record=record, receiver=receiver)
    return Candidate(scale=scale, quality=quality, data=data, model=model, psnr=receiver_psnr(sr, hr))


def smallest_file(hr: np.ndarray, *, codec: str, scales: tuple[int, ...]) -> tuple[int, int]:
    """(bytes, scale) of the smallest file any candidate makes: the lowest quality at each scale."""
    sizes = []
    for s in scales:
        record = Record(scale=s, width=hr.shape[1], height=hr.shape[0])
        sizes.append((len(compress(make_lr(hr, s), codec=codec, quality=QUALITIES[0], record=record)), s))
    return min(sizes)


def check_size(hr: np.ndarray, *, name: str = "the image") -> None:
    """A one-line TinySRError naming `name` for an original too small to judge candidates on (`MIN_SIDE`)."""
    height, width = hr.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise TinySRError(f"{name}: {width}x{height} pixels is too small to encode: candidates are judged by PSNR "
                          f"inside a {BORDER}-pixel border, so each side needs at least {MIN_SIDE} pixels")


def encode_image(hr: np.ndarray, *, budget: int, codec: str = "jpeg", scales: tuple[int, ...] = SCALES,
                 receiver: str = AUTO) -> tuple[Candidate, list[Candidate]]:
    """(best, all fitting candidates, one per scale) for HWC RGB uint8 `hr` within `budget` bytes, judged as
    `tinysr upscale --model RECEIVER` will see them.

    A scale whose LR would be under 8 pixels on a side is skipped. Raises a one-line TinySRError naming --budget
    when nothing fits, and one for an image under `MIN_SIDE` pixels on a side."""
    if codec not in CODECS:
        raise TinySRError(f"--codec {codec}: choose one of {', '.join(CODECS)}")
    auto_family(receiver)
    check_size(hr)
    scales = tuple(s for s in scales if min(hr.shape[:2]) >= 8 * s) or (1,)
    found = [c for s in scales
             if (c := candidate(hr, scale=s, codec=codec, budget=budget, receiver=receiver)) is not None]
    if not found:
        n_bytes, scale = smallest_file(hr, codec=codec, scales=scales)
        raise TinySRError(f"--budget {budget}: the smallest candidate is {n_bytes} bytes "
                          f"(x{scale}, q{QUALITIES[0]})")
    return max(found, key=lambda c: c.psnr), found


def check_output(src: Path, dst: Path, *, codec: str, force: bool) -> None:
    """Refuse an OUT that is the input, exists (without `force`), has a suffix other than the codec's, or lies
    under a file (a missing folder is created when the file is written)."""
    suffixes = {"jpeg": (".jpg", ".jpeg"), "webp": (".webp",)}[codec]
    if dst.suffix.lower() not in suffixes:
        raise TinySRError(f"{dst}: --codec {codec} writes {' or '.join(suffixes)} files; rename -o or change --codec")
    if dst.exists() and dst.resolve() == src.resolve():
        raise TinySRError(f"{dst}: is the input image; refusing to overwrite it")
    if dst.exists() and not force:
        raise TinySRError(f"{dst}: exists; pass --force to overwrite")
    above = next((p for p in dst.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise TinySRError(f"{dst}: {above} is a file, not a folder")


def encode_file(src: str | os.PathLike, dst: str | os.PathLike, *, budget: int, codec: str = "jpeg",
                force: bool = False, receiver: str = AUTO) -> tuple[Candidate, list[Candidate]]:
    """Encode the image file `src` (read as HWC RGB uint8; alpha dropped) into `dst` within `budget` bytes.

    Returns (written candidate, every fitting candidate). Nothing is written when it raises."""
    src, dst = Path(src), Path(dst)
    if codec not in CODECS:
        raise TinySRError(f"--codec {codec}: choose one of {', '.join(CODECS)}")
    auto_family(receiver)
    check_output(src, dst, codec=codec, force=force)
    hr, notes = read_image(src)
    for note in notes:  # e.g. alpha dropped, grey expanded to RGB: say so (the CLI prints one warning line each)
        warnings.warn(f"{src}: {note}", stacklevel=2)
    check_size(hr, name=str(src))
    best, found = encode_image(hr, budget=budget, codec=codec, receiver=receiver)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dst, best.data)
    except OSError as exc:
        raise TinySRError(f"{dst}: cannot write ({exc.strerror or exc})") from None
    return best, found
