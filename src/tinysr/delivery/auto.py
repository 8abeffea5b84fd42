"""`--model auto`: pick the bundled model for each input file from what the file is.

A lossless file (PNG, BMP, TIFF, lossless WebP) goes to the clean model of its scale; a lossy one (JPEG, lossy WebP,
AVIF, JPEG-in-TIFF) to the JPEG-aware one, or to the clean one while no JPEG-aware model of that scale is bundled
(the note says so). The decision reads the file's content, never its suffix: a PNG named .jpg is lossless.

The scale is the one `tinysr encode` recorded in the file (`tinysr.delivery.record`), else the caller's, else 2. A
recorded scale of 1 means "sent at full size": the decoded pixels come back unchanged (`IDENTITY`). A record counts
only when it is exactly what `tinysr encode` writes and fits the image (`tinysr.delivery.record.check_record`); any
other is ignored with a warning (`SourceInfo.ignored`), and the file is upscaled as one without a record.

API: `upscale_file(path)` returns an `AutoResult` (the image, the chosen model's name, the `SourceInfo`);
`upscale_auto(image, info=...)` does the same for pixels already read. `family` picks the budget: "auto" (the
default) keeps to the <= 1,000-parameter nets, "auto-5k" to <= 5,000 (`AUTO_FAMILIES`).

Convention: images are HW grey, HWC RGB or HWC RGBA uint8, 0..255, as `tinysr.infer.upscale.upscale` takes them.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tinysr.data.codecs import CODECS
from tinysr.data.io import PILLOW_FORMATS, _pillow_pixel_limit, read_image
from tinysr.errors import TinySRError, one_line
from tinysr.infer.load import bundled_names, load_network
from tinysr.delivery.record import Record, check_record, read_record
from tinysr.infer.upscale import upscale

#: scale -> (clean model, JPEG-aware model or None). A JPEG-aware model not (yet) bundled falls back to the clean one.
AUTO_MODELS: dict[int, tuple[str, str | None]] = {
    2: ("tiny-1k-x2", "tiny-1k-x2-jpeg"),
    3: ("tiny-1k-x3", None),  # no JPEG-aware x3 is being trained
    4: ("tiny-1k-x4", "tiny-1k-x4-jpeg"),
}
DEFAULT_SCALE = 2
#: Per scale, the JPEG quality bands: (lowest estimated quality, model), highest band first. A JPEG goes to the
#: first band its quality reaches whose model is bundled; lossy input of unknown quality (WebP, AVIF) to
#: AUTO_MODELS' JPEG-aware model. Near-lossless input is where the JPEG-aware nets lose (BSD100 x2, dB over bicubic:
#: clean input, tiny-1k-x2 +1.61 against tiny-1k-x2-jpeg +0.82). A band model is bundled if it beats the blind net
#: by >= 0.05 dB on held-out training images of its band; each band starts at the lowest quality where its net
#: is ahead of the band below it on those images (`tools/band_sweep.py`, q25-97 under `bicubic+jpegQ`;
#: benchmarks/RESULTS.md, "Compressed input": the band models and the sweep).
JPEG_BANDS: dict[int, tuple[tuple[int, str], ...]] = {
    2: ((95, "tiny-1k-x2"), (83, "tiny-1k-x2-jpeg-high"), (60, "tiny-1k-x2-jpeg"), (0, "tiny-1k-x2-jpeg-low")),
    3: ((0, "tiny-1k-x3"),),
    4: ((94, "tiny-1k-x4"), (80, "tiny-1k-x4-jpeg-high"), (60, "tiny-1k-x4-jpeg"), (0, "tiny-1k-x4-jpeg-low")),
}


@dataclass(frozen=True)
class AutoFamily:
    """One `--model auto...` family: the budget every model in it keeps, and per scale its clean model, its blind
    JPEG-aware model (or None) and its JPEG quality bands (as `JPEG_BANDS`)."""

    name: str
    budget: int  # deployed parameters, at most
    models: dict[int, tuple[str, str | None]]
    bands: dict[int, tuple[tuple[int, str], ...]]

    def to_dict(self) -> dict:
        """JSON-able, for the browser page (`tinysr.web.site`, page/auto.js): scales as string keys."""
        return {"name": self.name, "budget": self.budget,
                "models": {str(s): list(pair) for s, pair in self.models.items()},
                "bands": {str(s): [list(band) for band in bands] for s, bands in self.bands.items()}}


#: `auto` (the CLI default) keeps to <= 1,000 deployed parameters; `auto-5k` to <= 5,000: the 5k nets at every
#: scale. Bands as `JPEG_BANDS`, chosen the same way (x4: `tools/band_sweep.py --scale 4 --models tiny-5k-x4
#: tiny-5k-x4-jpeg-high tiny-5k-x4-jpeg tiny-5k-x4-jpeg-low`, benchmarks/RESULTS.md "The x3 and x4 frontier").
AUTO_FAMILIES: dict[str, AutoFamily] = {family.name: family for family in (
    AutoFamily("auto", 1000, AUTO_MODELS, JPEG_BANDS),
    AutoFamily("auto-5k", 5000,
               {2: ("tiny-5k-x2", "tiny-5k-x2-jpeg"), 3: AUTO_MODELS[3], 4: ("tiny-5k-x4", "tiny-5k-x4-jpeg")},
               {2: ((95, "tiny-5k-x2"), (82, "tiny-5k-x2-jpeg-high"), (58, "tiny-5k-x2-jpeg"),
                    (0, "tiny-5k-x2-jpeg-low")),
                3: JPEG_BANDS[3],
                4: ((95, "tiny-5k-x4"), (80, "tiny-5k-x4-jpeg-high"), (58, "tiny-5k-x4-jpeg"),
                    (0, "tiny-5k-x4-jpeg-low"))}),
)}
AUTO = "auto"


def auto_family(name: str) -> AutoFamily:
    """The family `name` ("auto", "auto-5k"); a one-line TinySRError for any other name."""
    if name not in AUTO_FAMILIES:
        raise TinySRError(f"no model family {name!r}: choose {', '.join(AUTO_FAMILIES)}")
    return AUTO_FAMILIES[name]


#: formats whose headers `inspect_source` opens: what `read_image` decodes, plus AVIF (recognised, not yet decoded);
#: Pillow's other plugins (e.g. EPS via Ghostscript) are never reached, as in `tinysr.data.io`.
INSPECTED_FORMATS = (*PILLOW_FORMATS, "AVIF")
IDENTITY = "none (x1: sent at full size)"

#: ITU-T T.81 Annex K.1 luminance quantisation table (libjpeg's `std_luminance_quant_tbl`); the sum is all we need.
STD_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


@dataclass(frozen=True)
class SourceInfo:
    """What an image file is: Pillow format, lossy or not, estimated JPEG quality (JPEG only), `encode`'s record, and
    why a record-like text in it was ignored (None: none was)."""

    path: Path
    format: str
    lossy: bool
    quality: int | None = None
    record: Record | None = None
    ignored: str | None = None


# ---------------------------------------------------------------------------------------------------- inspecting


def libjpeg_table_sum(quality: int) -> int:
    """Sum of the luminance table libjpeg writes at `quality` (1..100, `jpeg_quality_scaling` + baseline clamp):
    scale = 5000 / q below 50, else 200 - 2 q; entry = clamp((std * scale + 50) // 100, 1, 255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return sum(min(max((q * scale + 50) // 100, 1), 255) for q in STD_LUMINANCE)


def estimate_jpeg_quality(quantization: dict[int, list[int]]) -> int | None:
    """The libjpeg quality (1..100) whose scaled standard luminance table best matches table 0 of the file.

    We compare sums, not entries: a sum does not depend on whether Pillow lists the table in zigzag or natural
    order, and searching q = 1..100 through libjpeg's own rounding and clamping (rather than inverting the scale
    formula) stays right at the ends, where entries clamp to 1 or 255. Exact for files written by libjpeg (Pillow,
    most cameras' software); for other encoders it is the nearest libjpeg quality.
    """
    if not quantization or 0 not in quantization:
        return None
    target = sum(quantization[0])
    return min(range(1, 101), key=lambda q: (abs(libjpeg_table_sum(q) - target), -q))


def webp_is_lossy(path: Path) -> bool:
    """True for a lossy WebP (a `VP8 ` chunk), False for a lossless one (`VP8L`); walks the RIFF chunks."""
    with open(path, "rb") as f:
        header = f.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WEBP":
            raise TinySRError(f"{path}: not a RIFF WebP file")
        while chunk := f.read(8):
            if len(chunk) < 8:
                break
            fourcc, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if fourcc in (b"VP8 ", b"VP8L"):
                return fourcc == b"VP8 "
            f.seek(size + (size & 1), os.SEEK_CUR)
    raise TinySRError(f"{path}: WebP without an image chunk")


def inspect_source(path: str | os.PathLike, *, max_pixels: int | None = None) -> SourceInfo:
    """Open the file's header (pixels are not decoded) and say what it is; a one-line TinySRError if unreadable.

    max_pixels: the decompression-bomb limit, as `tinysr.data.io.read_image`'s (None: Pillow's): an image up to it
    is inspected, one over it is refused with the same advice (--max-pixels)."""
    path = Path(path)
    try:
        with _pillow_pixel_limit(max_pixels), Image.open(path, formats=INSPECTED_FORMATS) as im:
            fmt, (record, ignored) = im.format or "unknown", read_record(im)
            quality = estimate_jpeg_quality(getattr(im, "quantization", None)) if fmt == "JPEG" else None
            tiff_jpeg = fmt == "TIFF" and "jpeg" in str(im.info.get("compression", ""))
    except Image.DecompressionBombError as exc:
        raise TinySRError(f"{path}: cannot read image ({exc}; pass max_pixels= (CLI --max-pixels) to raise the "
                          "limit)") from None
    except (OSError, ValueError) as exc:
        raise TinySRError(f"{path}: cannot read image ({exc})") from None
    lossy = fmt in ("JPEG", "MPO", "AVIF") or tiff_jpeg or (fmt == "WEBP" and webp_is_lossy(path))
    return SourceInfo(path=path, format=fmt, lossy=lossy, quality=quality, record=record, ignored=ignored)


def coded_source(codec: str, quality: int, *, name: str = "lr") -> SourceInfo:
    """What a receiver knows of a file Pillow's `codec` ("jpeg", "webp", "avif"; `tinysr.data.codecs`) wrote at
    `quality`: lossy, and for a JPEG the quality itself (libjpeg's tables give it back exactly), else unknown."""
    return SourceInfo(path=Path(f"{name}.{codec}"), format=CODECS[codec], lossy=True,
                      quality=quality if codec == "jpeg" else None)


# ---------------------------------------------------------------------------------------------------- choosing


def resolve_scale(info: SourceInfo, *, scale: int | None, family: str = AUTO) -> int:
    """The recorded scale, else `scale`, else `DEFAULT_SCALE`; a recorded scale without a model is an error."""
    if info.record is None:
        return DEFAULT_SCALE if scale is None else scale
    recorded, models = info.record.scale, auto_family(family).models
    if recorded != 1 and recorded not in models:
        have = ", ".join(f"x{s}" for s in models)
        raise TinySRError(f"{info.path}: records scale x{recorded} ({info.record.text()}) but --model {family} has "
                          f"models for {have} only")
    return recorded


def choose_model(info: SourceInfo, *, scale: int | None = None, family: str = AUTO) -> str:
    """The bundled model name `family` ("auto", "auto-5k") uses for `info` (or `IDENTITY` for a recorded scale of
    1): the clean model for lossless input, the JPEG band's model for a JPEG of known quality, else the scale's
    JPEG-aware model."""
    scale = resolve_scale(info, scale=scale, family=family)
    if scale == 1:
        return IDENTITY
    models = auto_family(family).models
    if scale not in models:
        raise TinySRError(f"--model {family} has no x{scale} model (it has {', '.join(f'x{s}' for s in models)})")
    clean, lossy = models[scale]
    if not info.lossy:
        return clean
    band = band_model(info.quality, scale=scale, family=family) if info.quality is not None else None
    if band is not None:
        return band
    return lossy if lossy is not None and lossy in bundled_names() else clean


def band_model(quality: int, *, scale: int, family: str = AUTO) -> str | None:
    """The bundled model of the JPEG quality band that `quality` falls in (the family's bands, as `JPEG_BANDS`), or
    None if none is."""
    bundled, bands = set(bundled_names()), auto_family(family).bands
    return next((name for lowest, name in bands.get(scale, ()) if quality >= lowest and name in bundled), None)


def describe_choice(info: SourceInfo, name: str) -> str:
    """One line (control characters escaped, `tinysr.errors.one_line`): what the file is and which model `auto`
    took, and why when it is not the obvious one."""
    what = info.format + (f" q~{info.quality}" if info.quality is not None else "") + (
        " (lossy)" if info.lossy else " (lossless)")
    if info.record is not None:
        what += f", {info.record.text()}"
    line = f"{info.path}: {what} -> {name}"
    clean_of = {clean: lossy for family in AUTO_FAMILIES.values() for clean, lossy in family.models.values()}
    if info.lossy and name in clean_of:
        lossy = clean_of[name]
        if info.quality is not None and any(model == name and 0 < lowest <= info.quality
                                            for family in AUTO_FAMILIES.values()
                                            for bands in family.bands.values() for lowest, model in bands):
            line += " (near lossless: the clean model)"
        else:
            line += f" ({lossy} not bundled: the clean model)" if lossy else " (no JPEG-aware model of this scale)"
    return one_line(line)


# ---------------------------------------------------------------------------------------------------- upscaling


def restore_size(sr: np.ndarray, record: Record | None) -> np.ndarray:
    """Crop the output to the recorded original W x H (the sender padded the bottom/right edge to a multiple of the
    scale by replication, so the output is at least that size and its top-left part is the picture)."""
    if record is None:
        return sr
    if sr.shape[0] < record.height or sr.shape[1] < record.width:
        raise TinySRError(f"output {sr.shape[1]}x{sr.shape[0]} is smaller than the recorded size "
                          f"{record.width}x{record.height}; the file was not made by tinysr encode")
    return np.ascontiguousarray(sr[: record.height, : record.width])


def checked_record(info: SourceInfo, *, height: int, width: int, family: str = AUTO) -> SourceInfo:
    """`info`, or a copy without its record (and why, in `ignored`) when the record does not fit the decoded
    `height` x `width` pixels (`check_record`: e.g. a file turned by its EXIF orientation) or `family` has no model
    of its scale."""
    record = info.record
    if record is None:
        return info
    problem = check_record(record, width=width, height=height)
    models = auto_family(family).models
    if problem is None and record.scale != 1 and record.scale not in models:
        problem = f"--model {family} has models for {', '.join(f'x{s}' for s in models)} only"
    if problem is None:
        return info
    return dataclasses.replace(info, record=None, ignored=f"record ignored ({record.text()}: {problem})")


@dataclass(frozen=True)
class AutoResult:
    """An upscaled image (same layout as the input, uint8), the model `auto` chose, and what the source was."""

    image: np.ndarray
    model: str
    info: SourceInfo


_NETWORKS: dict[str, object] = {}


def network(name: str):
    """The deployed bundled network `name`, loaded once per process."""
    if name not in _NETWORKS:
        _NETWORKS[name] = load_network(name, scale=None)[0]
    return _NETWORKS[name]


def upscale_auto(image: np.ndarray, *, info: SourceInfo, scale: int | None = None, tile: int | None = None,
                 overlap: int | None = None, self_ensemble: bool = False, device: str = "cpu",
                 fused: bool | None = None, family: str = AUTO) -> AutoResult:
    """Upscale pixels read from `info.path` with the model `choose_model` picks, then restore the recorded size.

    The keywords are `tinysr.infer.upscale.upscale`'s. For a file without a record this is exactly
    `upscale(image, <chosen model>, ...)`: same network, same call, so lossless input gives the clean model's pixels.
    A record that does not fit the decoded pixels, or whose scale `family` has no model for, is ignored; every
    ignored record is a warning naming the file.
    """
    info = checked_record(info, height=image.shape[0], width=image.shape[1], family=family)
    if info.ignored is not None:
        warnings.warn(f"{info.path}: {info.ignored}; upscaled as a file without one", stacklevel=2)
    name = choose_model(info, scale=scale, family=family)
    if name == IDENTITY:
        return AutoResult(image=restore_size(image, info.record), model=name, info=info)
    sr = upscale(image, network(name), tile=tile, overlap=overlap, self_ensemble=self_ensemble, device=device,
                 fused=fused)
    return AutoResult(image=restore_size(sr, info.record), model=name, info=info)


def upscale_file(path: str | os.PathLike, *, scale: int | None = None, tile: int | None = None,
                 device: str = "cpu", fused: bool | None = None, family: str = AUTO,
                 max_pixels: int | None = None) -> AutoResult:
    """Read an image file (HWC RGB uint8, `tinysr.data.io.read_image`, up to `max_pixels`) and `upscale_auto` it
    with `family`'s models ("auto": <= 1,000 parameters, "auto-5k": <= 5,000)."""
    info = inspect_source(path, max_pixels=max_pixels)
    rgb, _ = read_image(info.path, max_pixels=max_pixels)
    return upscale_auto(rgb, info=info, scale=scale, tile=tile, device=device, fused=fused, family=family)
