"""FFmpeg processes and the frame loop of `tinysr.video.upscale`: raw frames read from the decoder's stdout, upscaled on a
thread pool, written in order to the encoder's stdin; SIGTERM turned into an interrupt.

Convention: a frame is the raw bytes of one picture as a flat or shaped uint8 array (`shape`), in whatever
pixel format the two FFmpeg commands agree on (`tinysr.video.upscale` chooses).
"""

from __future__ import annotations

import collections
import contextlib
import re
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
from tqdm import tqdm

from tinysr.errors import TinySRError, one_line
from tinysr.video.probe import VideoInfo


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


def read_frame(stream: IO[bytes], shape: tuple[int, ...]) -> np.ndarray | None:
    """The next uint8 frame of `shape` from a raw pipe, or None at its end (a partial frame is an error)."""
    buffer = bytearray(int(np.prod(shape)))
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


def frames_of(stream: IO[bytes], shape: tuple[int, ...]) -> Iterator[np.ndarray]:
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


def widen_pipe(stream: IO[bytes]) -> None:
    """Grow a pipe's kernel buffer to 1 MiB (Linux; default 64 KiB): a 1080p RGB frame then crosses in 6 writes
    instead of 95, each a switch between the processes. Elsewhere, or past the system's limit, a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def first_error(stderr: str) -> str | None:
    """The first ``[error]`` / ``[fatal]`` line of an FFmpeg log written with ``-loglevel level+...``, without the
    prefixes; None if there is none. (Only for a failure's message: no fact is read from FFmpeg's text.)"""
    errors = [line for line in stderr.splitlines() if re.search(r"\[(error|fatal|panic)\]", line)]
    if not errors:
        return None
    return re.sub(r"^(\[[^]]*\] )+", "", errors[0]).strip()


def _log(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def transcode(*, decode_cmd: list[str], encode_cmd: list[str], encoder_fds: tuple[int, ...] = (),
              shape: tuple[int, ...], upscale_frame: Callable[[np.ndarray], np.ndarray], info: VideoInfo, out: Path,
              workers: int, progress: bool) -> None:
    """Decode -> upscale -> encode, frames of `shape` through pipes; checks that every one of the source's frames
    came through. encoder_fds: descriptors the encoder inherits (the file it writes). Raises TinySRError naming
    the file at fault; always leaves both FFmpeg processes ended."""
    with tempfile.TemporaryFile() as decode_log, tempfile.TemporaryFile() as encode_log:
        decoder = spawn(decode_cmd, stdout=subprocess.PIPE, stderr=decode_log)
        encoder = spawn(encode_cmd, stdin=subprocess.PIPE, stderr=encode_log, pass_fds=encoder_fds)
        widen_pipe(decoder.stdout)
        widen_pipe(encoder.stdin)
        broken, done = False, 0
        try:
            frames = frames_of(decoder.stdout, shape)
            with tqdm(total=len(info.pts), unit="frame", desc=one_line(info.path.name), disable=not progress) as bar:
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
            raise TinySRError(f"{one_line(out)}: FFmpeg could not write it ({one_line(why)})")
        if decoder_rc != 0 or done != len(info.pts):
            why = first_error(_log(decode_log)) or f"{done} frames decoded of {len(info.pts)}"
            raise TinySRError(f"{one_line(info.path)}: decoding failed ({one_line(why)})")
