"""What a video file holds, asked of FFmpeg's own libraries through PyAV (`av`) in this process: its streams, pixel
format, colour tags, display rotation and every frame's timestamp.

Nothing is read from FFmpeg's human-readable text, so nothing in a file can pose as a stream fact: a title such as
``Stream #0:0: Video: h264 ..., 96x160`` or ``Display Matrix: rotation of 180.00 degrees`` stays a title. Files are
opened as ``file:`` URLs, so a name such as ``concat:a.mp4|b.mp4`` is that file, never one of FFmpeg's protocols.
`probe_video`:
1. open the container (`_open`); the decoders FFmpeg runs to fill in the stream parameters already get the limit;
2. take the first video stream that is not cover art (`_video_stream`); its declared size must be within the
   pixel limit (the image limit, `--max-pixels`);
3. decode every frame (`_decode`), each held to the limit before it is decoded (the decoder's ``max_pixels``: an
   MJPEG frame may be any size), each of the first frame's size and pixel format; any decoding error refuses the file;
4. read the facts (`_facts`): colour tags by FFmpeg's names, the display matrix's rotation, the rates.

Convention: timestamps are integers in the video stream's time base (`VideoInfo.time_base`), as the demuxer gives
them (no shift to zero), in presentation order, one per frame the decoder outputs (so a variable-frame-rate clip
keeps every frame and its time).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from tinysr.errors import TinySRError, one_line

#: Demuxers that open images (or text, like `tty`, which matches on the suffix alone): never a video. Animated GIF,
#: APNG and WebP count as images here: no audio, no timestamps worth keeping, and palette or alpha pixels.
IMAGE_DEMUXERS = ("image2", "tty", "gif", "apng", "webp", "ico")

#: Pixel formats decoded without loss to 8-bit RGB: 8 bits per sample, no alpha. Others (10-bit and more, alpha,
#: palettes) are refused rather than silently truncated or flattened.
SUPPORTED_PIX_FMTS = frozenset({
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p",
    "yuv410p", "nv12", "nv21", "nv16", "nv24", "yuyv422", "uyvy422", "gray", "rgb24", "bgr24", "gbrp", "0rgb",
    "rgb0", "0bgr", "bgr0",
})

#: FFmpeg's names of the colour codes (ITU-T H.273, libavutil's `av_color_*_name`): the names its filters take.
_RANGES = {1: "tv", 2: "pc"}
_SPACES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco", 9: "bt2020nc",
           10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
              10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_TRANSFERS = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
              10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
              15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_INT_MAX = 2 ** 31 - 1  # the largest ``max_pixels`` FFmpeg takes
_LOG_LOCK = threading.Lock()  # PyAV's log level is global: probes take turns at capturing FFmpeg's errors


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file, and what the rest of the file holds.

    pix_fmt: FFmpeg's name of the decoded format. color_range: "tv" / "pc" / None (untagged). colorspace,
    color_primaries, color_trc: FFmpeg's names, None when untagged. rotation: the display matrix's
    counter-clockwise degrees (0.0 without one). frame_rate: the stream's average rate "num/den" (nominal;
    timestamps decide). sar: the sample aspect ratio "num:den".
    pts / durations: per frame, in `time_base` units.
    """

    path: Path
    demuxer: str
    width: int
    height: int
    pix_fmt: str
    color_range: str | None
    colorspace: str | None
    color_primaries: str | None
    color_trc: str | None
    rotation: float
    frame_rate: str
    sar: str
    time_base: Fraction
    pts: tuple[int, ...] = ()
    durations: tuple[int, ...] = ()


#: The oldest FFmpeg CLI with every option the decode and encode processes use (``-fps_mode``, ``-/filter`` from
#: a file, ``-display_rotation``, the ``fd:`` protocol): 7.0.
MIN_FFMPEG = 7


def _major_version(exe: str) -> int:
    """FFmpeg's major version from ``ffmpeg -version`` ("ffmpeg version 7.1.1 ..." or "... n9.0.2-..."), 0 if
    unreadable (a git build without a release number counts as new enough)."""
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10).stdout.split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.match(r"ffmpeg version n?(\d+)\.", first)
    return int(match.group(1)) if match else (MIN_FFMPEG if first.startswith("ffmpeg version") else 0)


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The `ffmpeg` on PATH if it is FFmpeg `MIN_FFMPEG` or newer, else the binary that imageio-ffmpeg ships."""
    on_path = shutil.which("ffmpeg")
    if on_path and _major_version(on_path) >= MIN_FFMPEG:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        raise TinySRError(f"video needs FFmpeg {MIN_FFMPEG} or newer: pip install 'tinysr[video]' (imageio-ffmpeg)"
                          f"{', or update the ffmpeg on PATH' if on_path else ''}") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _av():
    try:
        import av
    except ImportError:
        raise TinySRError("video needs PyAV: pip install 'tinysr[video]' (av)") from None
    return av


def pixel_limit(max_pixels: int | None) -> int | None:
    """The most pixels a frame may have: `max_pixels`, else the image limit (Pillow's decompression-bomb limit, as
    `tinysr.data.io.read_image` applies it); None: no limit."""
    if max_pixels is not None:
        return max_pixels
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def _over_limit(what: str, width: int, height: int, limit: int) -> TinySRError:
    return TinySRError(f"{what} {width}x{height} = {width * height:,} pixels, over the limit of {limit:,}; pass "
                       "max_pixels= (CLI --max-pixels) to raise it")


# ---------------------------------------------------------------------------------------------------- steps 1, 2


def _open(path: Path, limit: int | None):
    """The container of `path` (a ``file:`` URL: no protocol), or TinySRError naming the file."""
    av = _av()
    options = {} if limit is None else {"max_pixels": str(min(limit, _INT_MAX))}
    try:
        return av.open(f"file:{os.path.abspath(path)}", options=options, metadata_errors="replace")
    except (av.FFmpegError, OSError, UnicodeError) as exc:
        raise TinySRError(f"{one_line(path)}: not a video (FFmpeg cannot open it: "
                          f"{one_line(getattr(exc, 'strerror', None) or exc)})") from None


def _video_stream(path: Path, container):
    """The first video stream that is not cover art; TinySRError for an image, text or a file without one."""
    av = _av()
    demuxer = container.format.name
    if demuxer.endswith("_pipe") or demuxer in IMAGE_DEMUXERS:
        raise TinySRError(f"{one_line(path)}: not a video (an image or text file: FFmpeg reads it as {demuxer})")
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise TinySRError(f"{one_line(path)}: no video stream (audio or subtitles only)")


def is_video(path: Path | str) -> bool:
    """Whether FFmpeg reads `path` as a video, judged by its content: a demuxer other than an image's, and a video
    stream that is not cover art. Images, audio-only files, text and missing files give False; without PyAV (the
    [video] extra) a TinySRError says to install it."""
    path = Path(path)
    if not path.is_file():
        return False
    _av()  # without the [video] extra nothing can be judged a video: say so (one line naming the extra)
    try:
        with contextlib.closing(_open(path, pixel_limit(None))) as container:
            _video_stream(path, container)
    except TinySRError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------- step 3


@contextlib.contextmanager
def _libav_errors() -> Iterator[list]:
    """The error lines FFmpeg's libraries log while the block runs, as (level, source, message)."""
    av = _av()
    with _LOG_LOCK:
        level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        try:
            with av.logging.Capture(local=False) as logs:
                yield logs
        finally:
            av.logging.set_level(level)


def _rotation(frame) -> float:
    """Counter-clockwise degrees of a frame's display matrix (FFmpeg's `av_display_rotation_get`), 0.0 without."""
    for side in frame.side_data:
        if side.type.name == "DISPLAYMATRIX":
            m = [v / 65536.0 for v in struct.unpack("<9i", bytes(side))]
            scale_x, scale_y = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
            if scale_x and scale_y:
                return round(-math.degrees(math.atan2(m[1] / scale_y, m[0] / scale_x)), 2) + 0.0
    return 0.0


def _decoding_failed(path: Path, exc: Exception, logs: list, *, packet: int, limit: int | None) -> TinySRError:
    """The one-line error of a decoder that refused a frame: over the pixel limit, else damaged."""
    text = " ".join([str(exc), *(message for _, _, message in logs)])
    size = re.search(r"Picture size (\d+)x(\d+) exceeds", text)
    if size and limit is not None:
        return _over_limit(f"{one_line(path)}: frame {packet} is", int(size[1]), int(size[2]), limit)
    why = logs[0][2] if logs else getattr(exc, "strerror", None) or str(exc)
    return TinySRError(f"{one_line(path)}: truncated or damaged ({one_line(str(why).strip())})")


def _decode(path: Path, container, stream, limit: int | None) -> tuple[list[tuple[int, int]], dict]:
    """([(pts, duration)] of every decoded frame, the first frame's width, height, pix_fmt and rotation)."""
    av = _av()
    if limit is not None:
        stream.codec_context.options = {"max_pixels": str(min(limit, _INT_MAX))}
    frames, first, packets = [], None, 0
    with _libav_errors() as logs:
        try:
            for packet in container.demux(stream):
                packets += 1 if packet.size else 0
                for frame in packet.decode():
                    first = first or {"width": frame.width, "height": frame.height, "pix_fmt": frame.format.name,
                                      "rotation": _rotation(frame)}
                    _check_frame(path, frame, first, number=len(frames) + 1)
                    frames.append((frame.pts if frame.pts is not None else frame.dts, frame.duration or 0))
        except av.FFmpegError as exc:
            raise _decoding_failed(path, exc, logs, packet=packets, limit=limit) from None
    if logs:
        raise TinySRError(f"{one_line(path)}: truncated or damaged ({one_line(logs[0][2].strip())})")
    if first is None:
        raise TinySRError(f"{one_line(path)}: FFmpeg decoded no video frame from it")
    if any(p is None for p, _ in frames):
        raise TinySRError(f"{one_line(path)}: its video frames carry no timestamps")
    return sorted(frames), first


def _check_frame(path: Path, frame, first: dict, *, number: int) -> None:
    """A supported pixel format, and every frame of the first one's size and format (the pipes carry frames of one
    shape)."""
    name = one_line(path)
    if first["pix_fmt"] not in SUPPORTED_PIX_FMTS:
        raise TinySRError(f"{name}: pixel format {first['pix_fmt']} is not supported (8-bit without alpha only)")
    if (frame.width, frame.height) != (first["width"], first["height"]):
        raise TinySRError(f"{name}: frame {number} is {frame.width}x{frame.height}, but the stream's frames are "
                          f"{first['width']}x{first['height']}; tinysr needs one frame size")
    if frame.format.name != first["pix_fmt"]:
        raise TinySRError(f"{name}: frame {number} is {frame.format.name}, but the stream's frames are "
                          f"{first['pix_fmt']}; tinysr needs one pixel format")


# ---------------------------------------------------------------------------------------------------- step 4


def _ratio(value: Fraction | None, sep: str) -> str | None:
    return f"{value.numerator}{sep}{value.denominator}" if value else None


def _facts(path: Path, container, stream, first: dict) -> VideoInfo:
    """`VideoInfo` without timestamps: the stream's colour tags and rates, the first frame's size and rotation."""
    context = stream.codec_context
    return VideoInfo(path=path, demuxer=container.format.name, width=first["width"], height=first["height"],
                     pix_fmt=first["pix_fmt"], color_range=_RANGES.get(context.color_range),
                     colorspace=_SPACES.get(context.colorspace),
                     color_primaries=_PRIMARIES.get(context.color_primaries),
                     color_trc=_TRANSFERS.get(context.color_trc), rotation=first["rotation"],
                     frame_rate=_ratio(stream.average_rate or stream.guessed_rate, "/") or "25/1",
                     sar=_ratio(context.sample_aspect_ratio or stream.sample_aspect_ratio, ":") or "1:1",
                     time_base=Fraction(stream.time_base))


def probe_video(path: Path | str, *, max_pixels: int | None = None) -> VideoInfo:
    """`VideoInfo` of `path` with every frame's timestamp, by decoding the whole video stream once (the cheap part
    of upscaling: ~1 ms per 540p frame). max_pixels: the most pixels a frame may have (None: the image limit,
    `pixel_limit`). Refuses, in one line naming the file: no video, no video stream, a frame over the pixel limit
    (before it is decoded), a change of frame size, an unsupported pixel format, and any decoding error (a
    truncated or damaged file)."""
    path, limit = Path(path), pixel_limit(max_pixels)
    if not path.is_file():
        raise TinySRError(f"{one_line(path)}: no such file")
    with contextlib.closing(_open(path, limit)) as container:
        stream = _video_stream(path, container)
        width, height = stream.codec_context.width, stream.codec_context.height
        if limit is not None and width * height > limit:
            raise _over_limit(f"{one_line(path)}: its frames are", width, height, limit)
        frames, first = _decode(path, container, stream, limit)
        info = _facts(path, container, stream, first)
    return replace(info, pts=tuple(p for p, _ in frames), durations=tuple(d for _, d in frames))
