"""What a video file holds, asked of FFmpeg: its streams, pixel format, colour tags, rotation and every frame's
timestamp.

imageio-ffmpeg ships `ffmpeg` but not `ffprobe`, so the stream facts are read from the input dump that
``ffmpeg -i`` prints (``Stream #0:0: Video: h264 (High), yuv420p(tv, bt709, progressive), 96x64, ...``) and the
frame timestamps from FFmpeg's own `framecrc` muxer (one ``stream, dts, pts, duration, size, crc`` line per decoded
frame, after a ``#tb 0: 1/12800`` header). The dump's layout is FFmpeg's `av_dump_format` / `avcodec_string`,
stable since FFmpeg 5; the parsing below follows it field by field and refuses what it does not recognise.

Convention: timestamps are integers in the video stream's time base (`VideoInfo.time_base`), as the demuxer gives
them (``-copyts``: no shift to zero), in presentation order, one per frame that the decoder outputs with
``-fps_mode passthrough`` (so a variable-frame-rate clip keeps every frame and its time).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from tinysr.errors import TinySRError

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

_FIELD_ORDERS = ("progressive", "top first", "bottom first", "top coded first", "bottom coded first")


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file, and what the rest of the file holds.

    pix_fmt: FFmpeg's name of the decoded format. color_range: "tv" / "pc" / None (untagged). colorspace,
    color_primaries, color_trc: FFmpeg's names, None when untagged. rotation: the display matrix's
    counter-clockwise degrees (0.0 without one). frame_rate: the dump's "fps" (nominal; timestamps decide). sar:
    the sample aspect ratio "num:den".
    pts / durations: per frame, in `time_base` units (empty until `probe_video` decodes).
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


#: The oldest FFmpeg with every option used here (``-fps_mode``, ``-/filter`` from a file, ``-display_rotation``,
#: ``-enc_time_base demux``): 7.0.
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


def shown(path: Path | str) -> str:
    """A file name for a one-line message: newlines and other control characters escaped."""
    return repr(str(path))[1:-1]


def first_error(stderr: str) -> str | None:
    """The first ``[error]`` / ``[fatal]`` line of an FFmpeg log written with ``-loglevel level+...``, without the
    prefixes; None if there is none."""
    errors = [line for line in stderr.splitlines() if re.search(r"\[(error|fatal|panic)\]", line)]
    if not errors:
        return None
    return re.sub(r"^(\[[^]]*\] )+", "", errors[0]).strip()


# ---------------------------------------------------------------------------------------------------- the dump


def _split_top(text: str) -> list[str]:
    """Split on ", " outside parentheses: ``"h264 (High), yuv420p(tv, bt709), 96x64"`` -> 3 parts."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and text.startswith(", ", i):
            parts.append(text[start:i])
            start = i + 2
    return [*parts, text[start:]]


def _colour_tags(pix_fmt_field: str) -> tuple[str, str | None, list[str | None]]:
    """``"yuv420p(tv, bt709/unknown/unknown, progressive)"`` -> ("yuv420p", "tv", [space, primaries, trc]).
    FFmpeg prints one name when the three agree, three joined by "/" otherwise, and "unknown" for untagged."""
    name, _, inner = pix_fmt_field.partition("(")
    color_range, colours = None, [None, None, None]
    for item in _split_top(inner.rstrip(")")) if inner else []:
        if item in ("tv", "pc"):
            color_range = item
        elif "/" in item:
            colours = item.split("/")
        elif item and not item.startswith(_FIELD_ORDERS):
            colours = [item] * 3
    return name, color_range, [None if c in (None, "unknown") else c for c in colours]


def _video_stream(lines: list[str]) -> tuple[str, float] | None:
    """(the first real video stream's description, its display rotation), or None without one. Cover art
    ("attached pic") is not a video stream."""
    for i, line in enumerate(lines):
        match = re.search(r"Stream #0:\d+\S*: Video: (.*)", line)
        if match and "(attached pic)" not in line:
            rotation = 0.0
            for after in lines[i + 1:]:
                if "Stream #" in after:
                    break
                found = re.search(r"(?:Display Matrix|displaymatrix): rotation of (-?[\d.]+) degrees", after)
                rotation = float(found.group(1)) if found else rotation
            return match.group(1), rotation
    return None


def parse_dump(path: Path, stderr: str) -> VideoInfo:
    """`VideoInfo` (without timestamps) from the input dump of ``ffmpeg -i path``; TinySRError if the file is no
    video FFmpeg can read."""
    lines = stderr.splitlines()
    header = next((line for line in lines if "Input #0, " in line), None)
    if header is None:
        raise TinySRError(f"{shown(path)}: not a video ({first_error(stderr) or 'FFmpeg cannot open it'})")
    demuxer = header.split("Input #0, ", 1)[1].split(", from '", 1)[0]
    if demuxer.endswith("_pipe") or demuxer in IMAGE_DEMUXERS:
        raise TinySRError(f"{shown(path)}: not a video (an image or text file: FFmpeg reads it as {demuxer})")
    stream = _video_stream(lines)
    if stream is None:
        raise TinySRError(f"{shown(path)}: no video stream (audio or subtitles only)")
    description, rotation = stream
    parts = _split_top(description)
    pix_fmt, color_range, (space, primaries, trc) = _colour_tags(parts[1] if len(parts) > 1 else "")
    size = next((re.match(r"(\d+)x(\d+)", p) for p in parts if re.match(r"\d+x\d+", p)), None)
    rate = next((p.split()[0] for p in parts if p.endswith((" fps", " tbr"))), "25")
    sar = re.search(r"SAR (\d+:\d+)", description)
    tbn = next((p.split()[0] for p in parts if p.endswith(" tbn")), "1k").replace("k", "000")
    if size is None:
        raise TinySRError(f"{shown(path)}: FFmpeg reports no frame size for its video stream")
    return VideoInfo(path=path, demuxer=demuxer, width=int(size.group(1)), height=int(size.group(2)),
                     pix_fmt=pix_fmt, color_range=color_range, colorspace=space, color_primaries=primaries,
                     color_trc=trc, rotation=rotation, frame_rate=rate, sar=sar.group(1) if sar else "1:1",
                     time_base=Fraction(1, int(float(tbn))))


def is_video(path: Path | str) -> bool:
    """Whether FFmpeg reads `path` as a video, judged by its content: a demuxer other than an image's, and a video
    stream that is not cover art. Images, audio-only files, text and missing files give False."""
    path = Path(path)
    if not path.is_file():
        return False
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                         text=True, errors="replace")  # no output file: FFmpeg dumps the input and exits 1
    try:
        parse_dump(path, run.stderr)
    except TinySRError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------- timestamps


def _parse_framecrc(path: Path, text: str) -> tuple[Fraction, list[int], list[int]]:
    """(time base, pts, durations) from `framecrc` output, pts sorted into presentation order."""
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", text, re.M)
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    if tb is None or not rows:
        raise TinySRError(f"{shown(path)}: FFmpeg decoded no video frame from it")
    frames = sorted((int(r[2]), int(r[3])) for r in rows)
    if frames[0][0] < -(2 ** 62):  # AV_NOPTS_VALUE
        raise TinySRError(f"{shown(path)}: its video frames carry no timestamps")
    return Fraction(int(tb.group(1)), int(tb.group(2))), [p for p, _ in frames], [d for _, d in frames]


def probe_video(path: Path | str) -> VideoInfo:
    """`VideoInfo` of `path` with every frame's timestamp, by decoding the whole video stream once (the cheap part
    of upscaling: ~1 ms per 540p frame). Refuses, in one line naming the file: no video, no video stream, an
    unsupported pixel format, and any decoding error (a truncated or damaged file)."""
    path = Path(path)
    if not path.is_file():
        raise TinySRError(f"{shown(path)}: no such file")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-copyts", "-noautorotate",
           "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-enc_time_base:v", "demux",
           "-f", "framecrc", "pipe:1"]
    run = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    info = parse_dump(path, run.stderr)
    if info.pix_fmt not in SUPPORTED_PIX_FMTS:
        raise TinySRError(f"{shown(path)}: pixel format {info.pix_fmt} is not supported (8-bit without alpha only)")
    error = first_error(run.stderr)
    if run.returncode != 0 or error:
        raise TinySRError(f"{shown(path)}: truncated or damaged ({error or f'FFmpeg exit {run.returncode}'})")
    time_base, pts, durations = _parse_framecrc(path, run.stdout)
    return replace(info, time_base=time_base, pts=tuple(pts), durations=tuple(durations))
