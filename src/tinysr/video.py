"""Upscale a video: every frame through the same network as an image, the timestamps, audio and subtitles kept.

The frames stream between two FFmpeg processes and never touch the disk:
1. probe: decode the video stream once for its facts and every frame's timestamp (`tinysr.video_probe`);
2. decode: FFmpeg writes the frames, as stored (``-noautorotate``), as raw HWC RGB uint8 on its stdout;
3. upscale: `tinysr.inference.upscale` on each frame, several frames at once on a thread pool (the fused kernels
   and torch release the GIL), written back in order;
4. encode: a second FFmpeg reads the raw frames on its stdin and the source file as its second input. It puts
   back each frame's source timestamp with ``setpts`` (an exact piecewise-linear function of the frame number,
   see `pts_expression`: variable frame rates are kept frame by frame), converts to YUV with the source's colour
   matrix and range, tags the colours and the display rotation, and copies the audio and subtitle packets from
   the source unchanged (``-c copy``).
The output is written as ``<dst>.part`` and renamed only on success; on any failure or interrupt (Ctrl-C,
SIGTERM) the partial file is removed.

Convention: frames are HWC RGB uint8 between the processes, decoded with the source's colour matrix and range
(FFmpeg's scaler, chroma upsampled bicubic). Going through RGB rather than feeding the Y-only nets the decoded Y
plane is measured in benchmarks/RESULTS.md ("video").
"""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinysr.errors import TinySRError
from tinysr.inference import upscale
from tinysr.resolve import load_network
from tinysr.video_probe import VideoInfo, ffmpeg_exe, first_error, is_video, probe_video, shown

__all__ = ["upscale_video", "is_video", "MUXERS"]

#: Output containers by suffix (the ``.part`` file hides the suffix from FFmpeg, so the muxer is named).
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}

#: FFmpeg colour-space names -> the scale filter's matrix names. Untagged sources are decoded with BT.601 (FFmpeg's
#: default), so they are encoded with it too and tagged smpte170m (a player would assume BT.709 for HD otherwise).
SCALE_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "fcc": "fcc",
                "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}


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


def decode_command(src: Path) -> list[str]:
    """FFmpeg writing the first video stream's frames, unrotated, as raw HWC RGB uint8 on stdout."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+error", "-noautorotate", "-i", str(src),
            "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def encode_filter(info: VideoInfo, *, pix_fmt: str) -> str:
    """The filter chain on the upscaled RGB frames: source timestamps back, then (YUV output) the source's matrix
    and range, then its sample aspect ratio and colour tags."""
    steps = [f"settb={info.time_base.numerator}/{info.time_base.denominator}",
             f"setpts='{pts_expression(info.pts)}'"]
    tags = {"color_primaries": info.color_primaries, "color_trc": info.color_trc}
    if pix_fmt.startswith(("yuv", "nv")):
        color_range = info.color_range or ("pc" if info.pix_fmt.startswith("yuvj") else "tv")
        space = info.colorspace if info.colorspace in SCALE_MATRIX else "smpte170m"
        steps.append(f"scale=out_color_matrix={SCALE_MATRIX[space]}:out_range={color_range}")
        tags.update(colorspace=space, range=color_range)
    steps += [f"format={pix_fmt}", f"setsar={info.sar.replace(':', '/')}"]
    known = ":".join(f"{key}={value}" for key, value in tags.items() if value)
    return ",".join(steps + ([f"setparams={known}"] if known else []))


def encode_command(info: VideoInfo, part: Path, *, scale: int, filter_script: Path, muxer: str, codec: str,
                   crf: int | None, preset: str | None, pix_fmt: str) -> list[str]:
    """FFmpeg reading raw RGB frames at `scale`x on stdin and the source as its second input; writes `part`."""
    rotation = ["-display_rotation:v:0", f"{info.rotation:g}"] if info.rotation else []
    tb = f"{info.time_base.numerator}/{info.time_base.denominator}"
    quality = (["-crf", str(crf)] if crf is not None else []) + (["-preset", preset] if preset else [])
    timescale = ["-video_track_timescale", str(info.time_base.denominator)] if muxer in ("mp4", "mov") else []
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{info.width * scale}x{info.height * scale}",
            "-framerate", info.frame_rate, "-noautorotate", *rotation, "-i", "pipe:0", "-i", str(info.path),
            "-/filter:v:0", str(filter_script), "-map", "0:v", "-map", "1:a?", "-map", "1:s?",
            "-map_metadata", "1", "-map_metadata:s:v:0", "1:s:v:0", "-copyts", "-fps_mode", "passthrough",
            "-enc_time_base:v", tb, "-c:v", codec, *quality, "-c:a", "copy", "-c:s", "copy", *timescale,
            "-f", muxer, str(part)]


# ---------------------------------------------------------------------------------------------------- paths


def output_path(src: Path, dst: Path, *, force: bool) -> Path:
    """The file to write: `dst`, or inside `dst` when it is a folder (the source's name; ``.mkv`` when its suffix
    is no known container). Refuses the input itself, an existing output without `force`, an unknown suffix."""
    if dst.is_dir():
        dst = dst / (src.name if src.suffix.lower() in MUXERS else src.stem + ".mkv")
    if dst.suffix.lower() not in MUXERS:
        raise TinySRError(f"{shown(dst)}: unknown video container; use one of {', '.join(MUXERS)}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise TinySRError(f"{shown(dst)}: is the input; refusing to write over it")
    if dst.exists() and not force:
        raise TinySRError(f"{shown(dst)}: exists; force=True (--force) replaces it")
    return dst


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (in the main thread only, where signals arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------------------- the frame loop


def read_frame(stream: IO[bytes], shape: tuple[int, int, int]) -> np.ndarray | None:
    """The next HWC uint8 frame of `shape` from a raw pipe, or None at its end (a partial frame is an error)."""
    buffer = bytearray(shape[0] * shape[1] * shape[2])
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    if got == 0:
        return None
    if got < len(buffer):
        raise TinySRError(f"FFmpeg's frame pipe ended inside a frame ({got} of {len(buffer)} bytes)")
    return np.frombuffer(buffer, np.uint8).reshape(shape)


def frames_of(stream: IO[bytes], shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """Every frame of a raw pipe (`read_frame`) until its end."""
    while (frame := read_frame(stream, shape)) is not None:
        yield frame


def run_frames(frames: Iterator[np.ndarray], upscale_frame: Callable[[np.ndarray], np.ndarray],
               write: Callable[[np.ndarray], None], *, workers: int, on_frame: Callable[[], None]) -> int:
    """Upscale `frames` on `workers` threads, writing results in order; at most 2 x workers frames in flight.
    Returns the number of frames written."""
    pending: collections.deque = collections.deque()
    done = 0
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for frame in frames:
            pending.append(pool.submit(upscale_frame, frame))
            while len(pending) > 2 * workers or (pending and pending[0].done()):
                write(pending.popleft().result())
                done += 1
                on_frame()
        while pending:
            write(pending.popleft().result())
            done += 1
            on_frame()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done


# ---------------------------------------------------------------------------------------------------- processes


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    """Start an FFmpeg process (one place, so that tests can wrap it, e.g. to cap the file size it may write)."""
    return subprocess.Popen(cmd, **kwargs)


def _log(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def transcode(info: VideoInfo, out: Path, *, encode_cmd: list[str], upscale_frame: Callable[[np.ndarray], np.ndarray],
              workers: int, progress: bool) -> None:
    """Decode -> upscale -> encode, the frames through pipes. Raises TinySRError naming the file at fault; always
    leaves both FFmpeg processes ended."""
    shape = (info.height, info.width, 3)
    with tempfile.TemporaryFile() as decode_log, tempfile.TemporaryFile() as encode_log:
        decoder = spawn(decode_command(info.path), stdout=subprocess.PIPE, stderr=decode_log)
        encoder = spawn(encode_cmd, stdin=subprocess.PIPE, stderr=encode_log)
        broken = False
        try:
            frames = frames_of(decoder.stdout, shape)
            with tqdm(total=len(info.pts), unit="frame", desc=info.path.name, disable=not progress) as bar:
                done = run_frames(frames, upscale_frame, lambda sr: encoder.stdin.write(np.ascontiguousarray(sr)),
                                  workers=workers, on_frame=bar.update)
            encoder.stdin.close()
        except BrokenPipeError:  # the encoder stopped reading: its log says why
            broken = True
        finally:
            for process in (decoder, encoder):
                if process.poll() is None and (broken or sys.exc_info()[0] is not None):
                    process.kill()
            encoder_rc, decoder_rc = encoder.wait(), decoder.wait()
        if broken or encoder_rc != 0:
            why = first_error(_log(encode_log)) or f"FFmpeg exit {encoder_rc}"
            raise TinySRError(f"{shown(out)}: FFmpeg could not write it ({why})")
        if decoder_rc != 0 or done != len(info.pts):
            why = first_error(_log(decode_log)) or f"{done} frames decoded of {len(info.pts)}"
            raise TinySRError(f"{shown(info.path)}: decoding failed ({why})")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` within the block (1 when frames run in parallel: no oversubscription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def choose_fused(model: nn.Module, fused: bool | None) -> bool:
    """fused=None: the compiled kernels when the model qualifies (tried on a tiny frame: `upscale` refuses in one
    line what cannot run fused), torch otherwise. A video has enough pixels to repay the kernels' start."""
    if fused is not None:
        return fused
    try:
        upscale(np.zeros((8, 8, 3), np.uint8), model, fused=True, workers=1)
    except TinySRError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------- the whole video


def upscale_video(src: Path | str, dst: Path | str, model: nn.Module | str, *, fused: bool | None = None,
                  tile: int | None = None, codec: str = "libx264", crf: int | None = 18,
                  preset: str | None = "veryfast", pix_fmt: str = "yuv420p", progress: bool = True,
                  force: bool = False, workers: int | None = None) -> Path:
    """Upscale every frame of the video `src` by the model's scale into `dst` (a file, or a folder to put it in);
    returns the path written.

    model: a network or a `--model` value (bundled name, run folder, weights file). fused: the compiled kernels
    (True), torch (False), or the kernels where the model qualifies (None). tile: LR pixels per tile side (None:
    whole frames). codec, crf, preset, pix_fmt: FFmpeg's encoder, its quality, speed and output pixel format
    (crf / preset None: not passed, for encoders without them, e.g. "ffv1"). workers: frames upscaled at once
    (None: torch's thread count). Kept: the frame count and every frame's timestamp, the audio and subtitle
    packets (copied), the display rotation, the colour tags, the global and video-stream metadata.
    """
    src, info = Path(src), probe_video(src)
    out = output_path(src, Path(dst), force=force)
    net = (load_network(model, scale=None)[0] if isinstance(model, str) else model).eval()
    use_fused, workers = choose_fused(net, fused), workers or torch.get_num_threads()
    part = out.with_name(out.name + ".part")
    with tempfile.TemporaryDirectory(prefix="tinysr-video-") as tmp, sigterm_as_interrupt(), \
            torch_threads(1 if workers > 1 else torch.get_num_threads()):
        script = Path(tmp) / "filter.txt"  # a file: the timestamp expression of a long VFR clip is long
        script.write_text(encode_filter(info, pix_fmt=pix_fmt))
        cmd = encode_command(info, part, scale=net.config.scale, filter_script=script, muxer=MUXERS[out.suffix.lower()],
                             codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
        try:
            transcode(info, out, encode_cmd=cmd, workers=workers, progress=progress,
                      upscale_frame=lambda frame: upscale(frame, net, tile=tile, fused=use_fused, workers=1))
        except BaseException as exc:
            part.unlink(missing_ok=True)
            if isinstance(exc, KeyboardInterrupt):
                print(f"tinysr: interrupted; removed the partial output {shown(part)}", file=sys.stderr)
            raise
    part.replace(out)
    return out
