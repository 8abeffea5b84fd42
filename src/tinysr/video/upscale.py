"""Upscale a video: every frame through the same network as an image, the timestamps, audio and subtitles kept.

The frames stream between two FFmpeg processes and never touch the disk (`tinysr.video.pipes`):
1. probe: decode the video stream once, in this process (PyAV), for its facts and every frame's timestamp, each
   frame held to the pixel limit before it is decoded (`tinysr.video.probe`);
2. decode: FFmpeg writes the frames, as stored (``-noautorotate``), raw on its stdout;
3. upscale: each frame, several at once on a thread pool (the compiled kernels and torch release the GIL),
   written back in order, by one of two routes (`choose_route`):
   - YUV (a x2 Y-only tiny net with Numba, a 4:2:0 source): the net runs on the decoded luma plane, the chroma
     planes are upscaled by MATLAB bicubic (`tinysr.video.yuv`); no RGB image is made;
   - RGB (any other net or source): HWC RGB uint8 frames, decoded with the source's matrix and range, through
     `tinysr.infer.upscale.upscale`, exactly as an image;
4. encode: a second FFmpeg reads the raw frames on its stdin and the source file as its second input. It puts
   back each frame's source timestamp with ``setpts`` (an exact piecewise-linear function of the frame number,
   see `pts_expression`: variable frame rates are kept frame by frame), converts to the output format (RGB with
   the source's matrix and range), tags the colours and the display rotation, and copies the audio and subtitle
   packets from the source unchanged (``-c copy``).
The encoder writes a new temporary file beside the output (``.<name>.<random>.tmp``, created exclusively and
locked: `tinysr.atomic.temp_file`), through a descriptor, so FFmpeg opens no output path; it takes the output's name
only on success, without replacing a file that appeared meanwhile unless `force` (`tinysr.atomic.claim`). On any
failure or interrupt (Ctrl-C, SIGTERM) the temporary file is removed; what a killed run left is removed by the next.
Inputs reach FFmpeg as ``file:`` paths with their demuxer named, so no name is read as a protocol.
The YUV route is ~1.9x faster in the net and skips two colour conversions; benchmarks/RESULTS.md ("video") has its
speed and PSNR against the RGB route.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinysr.atomic import claim, remove_dead_temps, temp_file
from tinysr.cpu import cores
from tinysr.delivery.auto import AUTO_FAMILIES, SourceInfo, choose_model, network
from tinysr.errors import TinySRError, one_line
from tinysr.infer.load import load_network
from tinysr.infer.network import Network
from tinysr.infer.upscale import choose_engine, upscale
from tinysr.video.pipes import sigterm_as_interrupt, transcode
from tinysr.video.probe import VideoInfo, ffmpeg_exe, is_video, pixel_limit, probe_video
from tinysr.video.yuv import eligible, luma_net, upscale_yuv420_frame

__all__ = ["upscale_video", "is_video", "MUXERS"]

#: Output containers by suffix (FFmpeg writes a descriptor, whose name it never sees, so the muxer is named).
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}

#: FFmpeg colour-space names -> the scale filter's matrix names. Untagged sources are decoded with BT.601 (FFmpeg's
#: default), so they are encoded with it too and tagged smpte170m (a player would assume BT.709 for HD otherwise).
SCALE_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "fcc": "fcc",
                "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}

#: FFmpeg's scaler flags for the RGB route's colour conversions. Its default YUV -> RGB is a fast approximation:
#: on Set5, the luma of the decoded RGB is 46.7 dB from the stored Y (errors of 1-2 levels); with exact rounding
#: and full chroma interpolation it is 63.7 dB, for ~3 ms more CPU per 540p frame (benchmarks/RESULTS.md "video").
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"


# ---------------------------------------------------------------------------------------------------- timestamps


def pts_segments(pts: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Runs of constant step: (first frame, its pts, step) each; frame n of a run has pts ``pts0 + (n - n0) * step``.
    A constant-rate clip is one run; each change of frame duration starts a new one."""
    segments: list[tuple[int, int, int]] = []
    for n, p in enumerate(pts):
        if segments:
            n0, p0, step = segments[-1]
            if n - n0 == 1 and step is None:
                segments[-1] = (n0, p0, p - p0)
                continue
            if p == p0 + (n - n0) * step:
                continue
        segments.append((n, p, None))
    return [(n0, p0, 0 if step is None else step) for n0, p0, step in segments]


def pts_expression(pts: tuple[int, ...]) -> str:
    """An FFmpeg expression of the frame number N giving `pts` exactly: a balanced tree of ``if(lt(N,k),...)`` over
    `pts_segments` (depth log2 of the number of runs)."""
    def tree(segs: list[tuple[int, int, int]]) -> str:
        if len(segs) == 1:
            n0, p0, step = segs[0]
            return f"{p0}+(N-{n0})*{step}"
        mid = len(segs) // 2
        return f"if(lt(N,{segs[mid][0]}),{tree(segs[:mid])},{tree(segs[mid:])})"

    return tree(pts_segments(pts))


# ---------------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Route:
    """How frames cross from the decoder to the encoder. yuv: the YUV path (`tinysr.video.yuv`) or RGB.
    decoded / upscaled: the raw pixel formats out of the decoder and into the encoder. shape: one decoded frame's
    uint8 array. upscale_frame: decoded frame -> raw upscaled frame."""

    yuv: bool
    decoded: str
    upscaled: str
    shape: tuple[int, ...]
    upscale_frame: Callable[[np.ndarray], np.ndarray]


def source_input(info: VideoInfo, *, max_pixels: int | None) -> list[str]:
    """FFmpeg's options opening the probed source: its demuxer named, frames held to the pixel limit, and the path
    as a ``file:`` URL, never a protocol (``concat:a.mp4|b.mp4`` is a file name)."""
    limit = [] if max_pixels is None else ["-max_pixels", str(min(max_pixels, 2 ** 31 - 1))]
    return [*limit, "-f", info.demuxer.split(",")[0], "-i", f"file:{os.path.abspath(info.path)}"]


def decode_command(info: VideoInfo, *, pix_fmt: str, max_pixels: int | None) -> list[str]:
    """FFmpeg writing the first video stream's frames, unrotated, as raw `pix_fmt` on stdout (converted with
    `SWS_FLAGS` where the format changes)."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+error", "-noautorotate",
            *source_input(info, max_pixels=max_pixels), "-map", "0:v:0", "-fps_mode", "passthrough",
            "-vf", f"scale=flags={SWS_FLAGS}", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]


def colour_tags(info: VideoInfo) -> dict[str, str]:
    """The output's colour tags: the source's, with range and matrix made explicit (untagged: limited range, or
    full for yuvj formats; BT.601, which the decoder assumed; a player would assume BT.709 for HD otherwise)."""
    tags = {"color_primaries": info.color_primaries, "color_trc": info.color_trc,
            "colorspace": info.colorspace if info.colorspace in SCALE_MATRIX else "smpte170m",
            "range": info.color_range or ("pc" if info.pix_fmt.startswith("yuvj") else "tv")}
    return {key: value for key, value in tags.items() if value}


def encode_filter(info: VideoInfo, *, route: Route, pix_fmt: str) -> str:
    """The filter chain on the upscaled frames: the source timestamps back, the conversion to `pix_fmt`, the
    source's sample aspect ratio and colour tags. RGB frames are converted with the source's matrix and range;
    YUV frames are tagged with them first, so that nothing converts them."""
    steps = [f"settb={info.time_base.numerator}/{info.time_base.denominator}",
             f"setpts='{pts_expression(info.pts)}'"]
    tags = colour_tags(info)
    setparams = "setparams=" + ":".join(f"{key}={value}" for key, value in tags.items())
    if route.yuv:
        steps.append(setparams)
    elif pix_fmt.startswith(("yuv", "nv")):
        steps.append(f"scale=out_color_matrix={SCALE_MATRIX[tags['colorspace']]}:out_range={tags['range']}"
                     f":flags={SWS_FLAGS}")
    else:  # RGB out: no matrix, no range
        setparams = ",".join(f"setparams={key}={tags[key]}" for key in ("color_primaries", "color_trc") if key in tags)
    steps += [f"format={pix_fmt}", f"setsar={info.sar.replace(':', '/')}"]
    return ",".join(steps + ([setparams] if setparams and not route.yuv else []))


def encode_command(info: VideoInfo, fd: int, *, route: Route, scale: int, filter_script: Path, muxer: str,
                   codec: str, crf: int | None, preset: str | None, max_pixels: int | None) -> list[str]:
    """FFmpeg reading raw upscaled frames (`route.upscaled`, `scale`x) on stdin and the source as its second input;
    writes the open file `fd` (the ``fd:`` protocol: the file is seekable, and FFmpeg opens no path to write)."""
    rotation = ["-display_rotation:v:0", f"{info.rotation:g}"] if info.rotation else []
    tb = f"{info.time_base.numerator}/{info.time_base.denominator}"
    quality = (["-crf", str(crf)] if crf is not None else []) + (["-preset", preset] if preset else [])
    timescale = ["-video_track_timescale", str(info.time_base.denominator)] if muxer in ("mp4", "mov") else []
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+error",
            "-f", "rawvideo", "-pix_fmt", route.upscaled, "-video_size", f"{info.width * scale}x{info.height * scale}",
            "-framerate", info.frame_rate, "-noautorotate", *rotation, "-i", "pipe:0",
            *source_input(info, max_pixels=max_pixels), "-/filter:v:0", str(filter_script),
            "-map", "0:v", "-map", "1:a?", "-map", "1:s?",
            "-map_metadata", "1", "-map_metadata:s:v:0", "1:s:v:0", "-copyts", "-fps_mode", "passthrough",
            "-enc_time_base:v", tb, "-c:v", codec, *quality, "-c:a", "copy", "-c:s", "copy", *timescale,
            "-f", muxer, "-fd", str(fd), "fd:"]


def output_name(src: Path) -> str:
    """The name of a video's output in a folder: the source's, or with ``.mkv`` when its suffix is no container."""
    return src.name if src.suffix.lower() in MUXERS else src.stem + ".mkv"


def output_path(src: Path, dst: Path, *, force: bool) -> Path:
    """The file to write: `dst`, or inside `dst` when it is a folder (`output_name`). Refuses the input itself, an
    existing output without `force`, an unknown suffix."""
    if dst.is_dir():
        dst = dst / output_name(src)
    if dst.suffix.lower() not in MUXERS:
        raise TinySRError(f"{one_line(dst)}: unknown video container; use one of {', '.join(MUXERS)}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise TinySRError(f"{one_line(dst)}: is the input; refusing to write over it")
    if dst.exists() and not force:
        raise TinySRError(f"{one_line(dst)}: exists; force=True (--force) replaces it")
    return dst


def write_claimed(out: Path, write: Callable[[int], None], *, force: bool) -> None:
    """`write(fd)` into a new temporary file beside `out` (`tinysr.atomic.temp_file`), then give it the name `out`:
    without `force`, only if no file holds the name by then. On any failure or interrupt the temporary file is
    removed (and an interrupt says so)."""
    part = None
    try:
        with contextlib.ExitStack() as stack:
            try:
                fd, part = stack.enter_context(temp_file(out))
            except OSError as exc:
                raise TinySRError(f"{one_line(out)}: cannot write it ({exc.strerror or exc})") from None
            write(fd)
            os.fsync(fd)
            _claim(part, out, force=force)
    except KeyboardInterrupt:
        if part is not None:
            print(f"tinysr: interrupted; removed the partial output {one_line(part)}", file=sys.stderr)
        raise


def _claim(part: Path, out: Path, *, force: bool) -> None:
    try:
        claim(part, out, replace=force)
    except FileExistsError:
        raise TinySRError(f"{one_line(out)}: exists (written by another process meanwhile); force=True (--force) "
                          "replaces it") from None
    except OSError as exc:  # e.g. --force onto a folder
        raise TinySRError(f"{one_line(out)}: cannot write it ({exc.strerror or exc})") from None


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` within the block (1 when frames run in parallel: no oversubscription),
    where torch is in use; nothing otherwise."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def choose_fused(model: Network, fused: bool | None) -> bool:
    """fused=None: the compiled kernels when the model qualifies (`choose_engine`), another engine otherwise;
    fused=True where they cannot apply is a one-line error."""
    return choose_engine(model, self_ensemble=False, device="cpu", rgb=True, fused=fused) == "fused"


def choose_route(info: VideoInfo, model: Network, *, yuv: bool | None, fused: bool | None, tile: int | None,
                 pix_fmt: str) -> Route:
    """The YUV path where it applies (`video_yuv.eligible`) unless yuv=False or fused=False (it runs the compiled
    kernels only); else RGB through `tinysr.infer.upscale.upscale`. yuv=True where it cannot apply is an error."""
    luma = luma_net(model) if yuv is not False and fused is not False else None
    width, height = info.width, info.height
    if eligible(luma, pix_fmt=info.pix_fmt, width=width, height=height, out_pix_fmt=pix_fmt):
        return Route(yuv=True, decoded=info.pix_fmt, upscaled=info.pix_fmt, shape=(width * height * 3 // 2,),
                     upscale_frame=lambda frame: upscale_yuv420_frame(luma, frame, width=width, height=height))
    if yuv:
        raise TinySRError(f"{one_line(info.path)}: the YUV path needs a x2 Y-only tiny net with Numba, an even-sized "
                          f"4:2:0 source and a 4:2:0 output (here {info.pix_fmt} {width}x{height} -> {pix_fmt})")
    use_fused = choose_fused(model, fused)
    return Route(yuv=False, decoded="rgb24", upscaled="rgb24", shape=(height, width, 3),
                 upscale_frame=lambda frame: upscale(frame, model, tile=tile, fused=use_fused, workers=1))


# ---------------------------------------------------------------------------------------------------- the whole video


def resolve_model(model: Network | str, src: Path, *, scale: int | None = None) -> tuple[Network, str]:
    """(network, its name) for a `model` argument: a `Network` as it is; "auto" / "auto-5k" by the one delivery
    policy (`tinysr.delivery.auto.choose_model`, for a lossy source of unknown quality: the scale's JPEG-aware
    model, as compressed video blocks as JPEG does); any other name as `--model` reads it."""
    if not isinstance(model, str):
        return model, model.source
    if model in AUTO_FAMILIES:
        name = choose_model(SourceInfo(path=src, format="video", lossy=True), scale=scale, family=model)
        return network(name), name
    return load_network(model, scale=scale)[0], model


def upscale_video(src: Path | str, dst: Path | str, model: Network | str, *, fused: bool | None = None,
                  yuv: bool | None = None, tile: int | None = None, codec: str = "libx264", crf: int | None = 18,
                  preset: str | None = "veryfast", pix_fmt: str = "yuv420p", progress: bool = True,
                  force: bool = False, workers: int | None = None, max_pixels: int | None = None) -> Path:
    """Upscale every frame of the video `src` by the model's scale into `dst` (a file, or a folder to put it in);
    returns the path written.

    model: a network, a `--model` value (bundled name, run folder, weights file) or "auto" / "auto-5k" (the model
    `tinysr.delivery.auto.choose_model` gives lossy input of unknown quality: compressed video blocks as JPEG does).
    fused: the compiled kernels (True), another engine (False), or the kernels where the model qualifies (None).
    yuv: run a Y-only x2 net on the decoded luma plane, chroma by MATLAB bicubic (`tinysr.video.yuv`; None: where
    it applies). tile: LR pixels per tile side on the RGB path (None: whole frames). codec, crf, preset, pix_fmt:
    FFmpeg's encoder, its quality, speed and output pixel format (crf / preset None: not passed, for encoders
    without them, e.g. "ffv1"). force: replace an existing `dst` (else refused, even when it appears while this
    runs). workers: frames upscaled at once (None: every core). max_pixels: the most pixels a source frame may
    have, checked before it is decoded (None: the image limit, `tinysr.video.probe.pixel_limit`). Kept: the
    frame count and every frame's timestamp, the audio and subtitle packets (copied), the display rotation, the
    colour tags, the sample aspect ratio, the global and video-stream metadata.
    """
    src, limit = Path(src), pixel_limit(max_pixels)
    info = probe_video(src, max_pixels=limit)
    out = output_path(src, Path(dst), force=force)
    net, _ = resolve_model(model, src)
    route = choose_route(info, net, yuv=yuv, fused=fused, tile=tile, pix_fmt=pix_fmt)
    workers = workers or cores()
    remove_dead_temps(out.parent)  # what killed runs left beside their outputs
    with tempfile.TemporaryDirectory(prefix="tinysr-video-") as tmp, sigterm_as_interrupt(), \
            torch_threads(1 if workers > 1 else cores()):
        script = Path(tmp) / "filter.txt"  # a file: the timestamp expression of a long VFR clip is long
        script.write_text(encode_filter(info, route=route, pix_fmt=pix_fmt))

        def write(fd: int) -> None:
            encode_cmd = encode_command(info, fd, route=route, scale=net.scale, filter_script=script,
                                        muxer=MUXERS[out.suffix.lower()], codec=codec, crf=crf, preset=preset,
                                        max_pixels=limit)
            transcode(decode_cmd=decode_command(info, pix_fmt=route.decoded, max_pixels=limit),
                      encode_cmd=encode_cmd, encoder_fds=(fd,), shape=route.shape, upscale_frame=route.upscale_frame,
                      info=info, out=out, workers=workers, progress=progress)

        write_claimed(out, write, force=force)
    return out
