"""Image file I/O: every image enters tinysr through `read_image` and leaves through `write_image`.

Convention (the boundary of the whole package):
    read_image returns HWC, RGB, uint8, range 0..255, C-contiguous; whatever the file held (grey, alpha, palette,
    16-bit, CMYK, an EXIF rotation) is converted to that and each conversion is reported as a human note.
    write_image takes HW (grey), HWC RGB or HWC RGBA uint8 and writes it atomically (`tinysr.atomic`).

Safety: only the formats in `PILLOW_FORMATS` are decoded (Pillow's other plugins, e.g. EPS via Ghostscript, are
never reached); Pillow's decompression-bomb limit stays on (`max_pixels=` raises it for one call); truncated files
raise (`ImageFile.LOAD_TRUNCATED_IMAGES` is left False and pixels are decoded eagerly with `.load()`).
Every failure is a `TinySRError("<path>: cannot read image (<reason>)")`, one line.
"""

from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tinysr.atomic import atomic_open
from tinysr.data.png import write_png
from tinysr.errors import TinySRError, one_line

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Pillow format names we decode (camera multi-picture JPEGs come through "JPEG" as Pillow's MPO images).
PILLOW_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")

_SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".webp": "WEBP"}
_EXIF_ORIENTATION = 0x0112
_PIXEL_LIMIT_LOCK = threading.Lock()


class _Unreadable(Exception):
    """Internal: the reason an image cannot be read; turned into one TinySRError line by `read_image`."""


# ---------------------------------------------------------------------------------------------------- reading


@contextmanager
def _pillow_pixel_limit(limit: int | None) -> Iterator[None]:
    """Let Pillow open images up to `limit` pixels; tinysr then applies `limit` itself (`_check_pixels`).

    Pillow checks the module global `Image.MAX_IMAGE_PIXELS` inside `Image.open` (warning above it, error above
    twice it) and takes no per-call argument, so the only way to allow a larger image for one call is to raise the
    global briefly, under a lock. It is never lowered, and it is restored on exit.
    """
    default = Image.MAX_IMAGE_PIXELS
    if limit is None or default is None or limit <= default:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked exactly by _check_pixels
            yield
        return
    with _PIXEL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = default


def _check_pixels(im: Image.Image, limit: int | None) -> None:
    n_pixels = im.width * im.height
    if limit is not None and n_pixels > limit:
        raise _Unreadable(f"{im.width}x{im.height} = {n_pixels:,} pixels exceeds the decompression-bomb limit of "
                          f"{limit:,}; pass max_pixels= (CLI --max-pixels) to raise it")


def _is_16bit_raw(im: Image.Image) -> bool:
    """True when Pillow will decode 16-bit samples into an 8-bit mode (it keeps the high byte, i.e. value >> 8)."""
    for tile in im.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _decode(im: Image.Image, limit: int | None) -> list[str]:
    """Check size, note 16-bit / multi-frame sources, and decode pixels eagerly so truncation fails here."""
    notes: list[str] = []
    _check_pixels(im, limit)
    if getattr(im, "n_frames", 1) > 1:
        notes.append(f"first of {im.n_frames} frames used")
    if im.mode not in ("I;16", "I;16B", "I;16L", "I") and _is_16bit_raw(im):
        notes.append("16-bit reduced to 8-bit")
    im.load()
    return notes


def _open(path: Path, limit: int | None) -> tuple[Image.Image, list[str]]:
    """Open with only our formats, decode, and apply EXIF orientation (the returned image is upright)."""
    try:
        with _pillow_pixel_limit(limit):
            im = Image.open(path, formats=PILLOW_FORMATS)
    except Image.DecompressionBombError as err:
        raise _Unreadable(f"{err}; pass max_pixels= (CLI --max-pixels) to raise the limit") from err
    try:
        notes = _decode(im, limit)
    except BaseException:
        im.close()
        raise
    if im.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None):
        rotated = ImageOps.exif_transpose(im)
        im.close()
        im = rotated
        notes.append("EXIF orientation applied")
    return im, notes


def _from_16bit(im: Image.Image, notes: list[str]) -> np.ndarray:
    """16-bit grey (Pillow mode I;16* or I) → uint8 HxW by value >> 8 (0..65535 → 0..255, no clipping)."""
    wide = np.asarray(im).astype(np.int64)
    if wide.size and (wide.min() < 0 or wide.max() > 65535):
        raise _Unreadable(f"integer image with values {wide.min()}..{wide.max()} outside the 16-bit range")
    notes.append("16-bit reduced to 8-bit")
    return (wide >> 8).astype(np.uint8)


def _to_rgb_array(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Pillow image of any supported mode → HWC RGB uint8, appending one note per conversion."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = _from_16bit(im, notes)
        notes.append("grey expanded to RGB")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette expanded to RGB")
        mode = im.mode
    if mode in ("1", "L", "LA", "La"):
        if mode in ("LA", "La"):
            notes.append("alpha dropped")
        if mode == "1":
            notes.append("1-bit expanded to 8-bit")
        notes.append("grey expanded to RGB")
        return np.ascontiguousarray(np.repeat(np.asarray(im.convert("L"))[:, :, None], 3, axis=2))
    if mode in ("RGBA", "RGBa", "RGBX"):
        if mode != "RGBX":
            notes.append("alpha dropped")
        return np.ascontiguousarray(np.asarray(im.convert("RGBA"))[:, :, :3])
    if mode == "CMYK":
        notes.append("CMYK converted")
    elif mode != "RGB":
        if mode == "F":
            raise _Unreadable("32-bit float images are not supported")
        notes.append(f"{mode} converted to RGB")
    return np.array(im.convert("RGB"))


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Read an image file as HWC RGB uint8 (0..255, C-contiguous) plus notes of what was converted.

    path: PNG, JPEG, BMP, TIFF or WebP (decided by content, not suffix).
    max_pixels: the decompression-bomb limit for this call; None uses Pillow's `Image.MAX_IMAGE_PIXELS`.
    Returns (image, notes), notes e.g. ["alpha dropped"], ["16-bit reduced to 8-bit", "grey expanded to RGB"].
    Raises TinySRError("<path>: cannot read image (<reason>)") on any failure.
    """
    path = Path(path)
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        if not path.exists():
            raise _Unreadable("no such file")
        if path.is_dir():
            raise _Unreadable("is a directory")
        im, notes = _open(path, limit)
        try:
            image = _to_rgb_array(im, notes)
        finally:
            im.close()
    except _Unreadable as err:
        raise TinySRError(f"{path}: cannot read image ({err})") from None
    except UnidentifiedImageError as err:
        raise TinySRError(f"{path}: cannot read image (not a PNG, JPEG, BMP, TIFF or WebP file)") from err
    except Exception as err:  # noqa: BLE001 - a third-party decoder fails with arbitrary types; report them all
        reason = " ".join(str(err).split()) or type(err).__name__
        raise TinySRError(f"{path}: cannot read image ({reason})") from err
    return image, notes


# ---------------------------------------------------------------------------------------------------- writing


def _check_writable(img: np.ndarray, fmt: str, path: Path) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TinySRError(f"{path}: write_image needs a uint8 numpy array, got "
                          f"{getattr(img, 'dtype', type(img).__name__)}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
        raise TinySRError(f"{path}: write_image needs HW, HWx3 or HWx4, got shape {img.shape}")
    if fmt == "JPEG" and img.ndim == 3 and img.shape[2] == 4:
        raise TinySRError(f"{path}: JPEG cannot store alpha; drop it or write .png")


def write_image(path: str | os.PathLike, img: np.ndarray, *, replace: bool = True) -> None:
    """Write HW grey, HWC RGB or HWC RGBA uint8 to `path`, format from the suffix, atomically.

    PNG, BMP and TIFF are lossless; WebP is written lossless; JPEG at quality 95. The file appears complete or not
    at all, with the mode the umask gives (`tinysr.atomic.atomic_open`). replace=False: `path` is claimed only if
    no file holds the name when the image is complete, else a TinySRError and the file there is kept (of two
    writers racing for one name, the second is refused).
    """
    path = Path(path)
    fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
    if fmt is None:
        raise TinySRError(f"{path}: unknown image suffix; use one of {' '.join(IMAGE_SUFFIXES)}")
    _check_writable(img, fmt, path)
    options = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(fmt, {})
    try:
        with atomic_open(path, replace=replace) as f:
            if fmt == "PNG":
                write_png(f, img)  # streamed by rows: no second copy of a large output in memory
            else:
                Image.fromarray(np.ascontiguousarray(img)).save(f, format=fmt, **options)
    except FileExistsError:
        raise TinySRError(f"{one_line(path)}: exists (written by another process meanwhile); pass --force to "
                          "overwrite") from None
    except OSError as err:
        raise TinySRError(f"{path}: cannot write image ({err.strerror or err})") from err


def read_alpha(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """HW uint8 alpha of an image file, upright like `read_image`'s pixels (which drop alpha)."""
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    with _pillow_pixel_limit(limit), Image.open(path, formats=PILLOW_FORMATS) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGBA").getchannel("A"))


#: What `read_for_upscale` keeps that `read_image` converts: these notes are not conversions of the output.
KEPT_BY_UPSCALE = ("alpha dropped", "grey expanded to RGB")


def read_for_upscale(path: str | os.PathLike, *, max_pixels: int | None = None) -> tuple[np.ndarray, list[str]]:
    """An image file as HW grey, HWC RGB or HWC RGBA uint8, following what the file holds, and the conversions
    that did change it (16-bit reduced to 8-bit, CMYK converted, ...) for the caller to report."""
    rgb, notes = read_image(path, max_pixels=max_pixels)
    changed = [n for n in notes if n not in KEPT_BY_UPSCALE and n != "EXIF orientation applied"]
    if "alpha dropped" in notes:
        return np.concatenate([rgb, read_alpha(path, max_pixels=max_pixels)[:, :, None]], axis=2), changed
    if "grey expanded to RGB" in notes:
        return np.ascontiguousarray(rgb[:, :, 0]), changed
    return rgb, changed
