"""Issue 25, adversarial cases of `tinysr upscale`'s outputs and video input: what tinysr did not write is never
deleted or replaced, a final name is claimed without replacing (two runs into one folder: the loser says so), a
video file cannot forge its stream facts, a video frame is held to the pixel limit, and what a killed writer left
is removed by the next one.

The two-runs test starts real `tinysr upscale` processes (20 trials each for images and video, tiny inputs).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinysr.video.pipes as video_pipes
from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.infer.load import load_network
from tinysr.video.probe import is_video, probe_video
from tinysr.video.upscale import upscale_video

from test_video import ffmpeg, sources

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = "tiny-1k-x2"
TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def _clip(path: Path, *, seconds: int = 1, size: str = "64x48", extra: tuple[str, ...] = (),
          video: str | None = None, muxer: str = "mp4") -> Path:
    """A small H.264 clip (testsrc2, or the lavfi source `video`), no audio."""
    source = video or f"testsrc2=size={size}:rate=25:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra,
           "-f", muxer, str(path))
    return path


def _frames(path: Path) -> tuple[int, int, int, float]:
    """(frames, width, height, mean luma) of a video, decoded by PyAV."""
    import av

    with av.open(f"file:{path}") as container:
        planes = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    return len(planes), planes[0].shape[1], planes[0].shape[0], float(np.mean(planes))


def _error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinysr: error: "), err
    return lines[0]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".part")))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def model():
    return load_network(MODEL, scale=None)[0]


# ---------------------------------------------------------------- case 2: the input and unrelated files are kept


def test_an_input_named_like_a_partial_download_is_kept(clip, tmp_path, capsys):
    """The issue's command: `tinysr upscale movie.mp4.part -o movie.mp4` (a browser's partial download name)."""
    src = tmp_path / "movie.mp4.part"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "movie.mp4"
    assert main(["upscale", "--model", MODEL, str(src), "-o", str(out)]) == 0, capsys.readouterr().err
    assert src.read_bytes() == clip.read_bytes()
    assert _frames(out)[:3] == (25, 128, 96)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.mp4", "movie.mp4.part"]


def test_an_unrelated_part_file_is_neither_overwritten_nor_deleted(clip, model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.mp4.part").write_bytes(b"someone else's download")
    assert main(["upscale", "--model", MODEL, str(clip), "-o", str(out)]) == 0, capsys.readouterr().err
    assert (out / "clip.mp4.part").read_bytes() == b"someone else's download"
    assert _frames(out / "clip.mp4")[:3] == (25, 128, 96)

    (out / "clip.mp4").unlink()
    monkeypatch.setattr(video_pipes, "spawn", lambda cmd, **kw: subprocess.Popen([*cmd[:-1], "/no/such/dir/x"]
                                                                               if "stdin" in kw else cmd, **kw))
    with pytest.raises(TinySRError, match="FFmpeg could not write it"):  # a failing encoder cleans up only its own
        upscale_video(clip, out, model, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4.part"]
    assert (out / "clip.mp4.part").read_bytes() == b"someone else's download"


def test_a_temporary_name_held_by_another_writer_is_not_reused(clip, model, tmp_path, monkeypatch):
    """Temporary names are created exclusively: with the random part forced to collide, a live writer's file (it
    holds its lock) is skipped, neither written nor removed; a killed writer's file is removed."""
    import tinysr.atomic as atomic

    names = iter(["0badc0de", "0badc0de", "600dc0de"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(names))
    theirs = tmp_path / ".up.mp4.0badc0de.tmp"
    theirs.write_bytes(b"another writer's data")
    (tmp_path / ".up.mp4.deadbeef.tmp").write_bytes(b"a killed run's partial video")  # nobody holds its lock
    fd = os.open(theirs, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    seen = []
    real_spawn = video_pipes.spawn
    monkeypatch.setattr(video_pipes, "spawn",
                        lambda cmd, **kw: (seen.append(_temps(tmp_path)), real_spawn(cmd, **kw))[1])
    try:
        upscale_video(clip, tmp_path / "up.mp4", model, preset="ultrafast", progress=False)
    finally:
        os.close(fd)
    assert seen[-1] == [".up.mp4.0badc0de.tmp", ".up.mp4.600dc0de.tmp"]  # ours beside theirs, in the destination
    assert theirs.read_bytes() == b"another writer's data"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".up.mp4.0badc0de.tmp", "up.mp4"]


# ---------------------------------------------------------------- case 3: a final name is claimed, never replaced


def test_an_image_written_meanwhile_is_kept_and_this_run_fails(tmp_path, monkeypatch, capsys):
    """Deterministic form of the race: the output appears after the run's check, before its write."""
    import tinysr.cli.upscale as cli_upscale

    Image.new("RGB", (8, 8), (40, 40, 40)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    real = cli_upscale.upscale

    def upscale_while_another_writes(image, model, **options):
        out.mkdir(exist_ok=True)
        (out / "a.png").write_bytes(b"the other run's image")
        return real(image, model, **options)

    monkeypatch.setattr(cli_upscale, "upscale", upscale_while_another_writes)
    assert main(["upscale", "--model", MODEL, str(tmp_path / "a.png"), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert "upscaled 0 of 1 images" in captured.out
    assert f"tinysr: failed: {tmp_path / 'a.png'}: {out / 'a.png'}: exists (written by another process meanwhile)" \
           in captured.err
    assert (out / "a.png").read_bytes() == b"the other run's image" and _temps(out) == []
    assert main(["upscale", "--model", MODEL, str(tmp_path / "a.png"), "-o", str(out), "--force"]) == 0
    assert Image.open(out / "a.png").size == (16, 16)  # --force replaces


def test_a_video_written_meanwhile_is_kept_and_this_run_fails(clip, model, tmp_path, monkeypatch):
    out = tmp_path / "up.mp4"
    real = video_pipes.transcode

    def transcode_while_another_writes(**kwargs):
        real(**kwargs)
        out.write_bytes(b"the other run's video")

    import tinysr.video.upscale as video

    monkeypatch.setattr(video, "transcode", transcode_while_another_writes)
    with pytest.raises(TinySRError) as info:
        upscale_video(clip, out, model, preset="ultrafast", progress=False)
    assert str(info.value) == f"{out}: exists (written by another process meanwhile); force=True (--force) replaces it"
    assert out.read_bytes() == b"the other run's video" and _temps(tmp_path) == []
    upscale_video(clip, out, model, preset="ultrafast", progress=False, force=True)
    assert _frames(out)[:3] == (25, 128, 96) and _temps(tmp_path) == []


#: A process that imports tinysr once, then, per trial, forks two children at the same moment, each running
#: `tinysr upscale` (`tinysr.cli.main`) with its own stdout and stderr files: real, separate processes, without the
#: second of imports that each would spend as ``python -m tinysr``, so that 40 trials take seconds, not minutes.
#: A line {"warm": argv} runs argv in the process itself first (imports, compiled kernels, the network).
_RACER = r"""
import contextlib, io, json, os, sys
import tqdm
tqdm.tqdm.monitor_interval = 0  # no monitor thread in the process that forks
from tinysr.cli import main

def child(argv, log):
    with open(log + ".out", "w") as out, open(log + ".err", "w") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            code = main(argv)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)

for line in sys.stdin:
    request = json.loads(line)
    if "warm" in request:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            codes = [main(request["warm"])]
    else:
        pids = []
        for argv, log in request["race"]:
            pid = os.fork()
            if pid == 0:
                child(argv, log)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    print(json.dumps(codes), flush=True)
"""


@pytest.fixture(scope="module")
def racer(tmp_path_factory):
    """race(argv_a, argv_b) -> [(exit status, stdout, stderr)] of two `tinysr upscale` processes started together."""
    root = tmp_path_factory.mktemp("racer")
    proc = subprocess.Popen([sys.executable, "-c", _RACER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(root / "racer.err", "w"), text=True)
    count = iter(range(10 ** 6))

    def ask(request: dict) -> list[int]:
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline()
        assert answer, (root / "racer.err").read_text()
        return json.loads(answer)

    def race(*argvs: list[str]) -> list[tuple[int, str, str]]:
        logs = [str(root / f"run{next(count)}") for _ in argvs]
        codes = ask({"race": [[argv, log] for argv, log in zip(argvs, logs)]})
        return [(code, Path(log + ".out").read_text(), Path(log + ".err").read_text())
                for code, log in zip(codes, logs)]

    Image.new("RGB", (8, 8)).save(root / "warm.png")
    _clip(root / "warm.mp4", video="color=size=32x32:rate=25:duration=0.2")
    for src in ("warm.png", "warm.mp4"):
        assert ask({"warm": ["upscale", "--model", MODEL, str(root / src), "-o", str(root / "warm")]}) == [0]
    yield race
    proc.stdin.close()
    proc.wait(timeout=60)


def _claims(run: tuple[int, str, str], names: list[str], src_dir: Path, out: Path) -> set[str]:
    """The names a run reports as written: those that no failure line names (by input or output); checks that each
    failure is a one-line "exists" and that the summary and the exit status agree."""
    code, stdout, err = run
    lines = [line for line in err.splitlines() if line.startswith("tinysr: failed: ")]
    for line in lines:
        assert re.search(r": exists[ ;]", line), line  # before the work (the check) or after it (the claim)
    failed = {name for name in names for line in lines if f"{src_dir / name}: " in line or f"{out / name}: " in line}
    written = set(names) - failed
    assert f"upscaled {len(written)} of {len(names)} " in stdout, stdout
    assert code == (1 if failed else 0), err
    return written


@pytest.mark.parametrize("kind", ["images", "video"])
def test_two_runs_into_one_folder_never_report_a_file_they_did_not_write(kind, tmp_path, racer):
    """The acceptance test: 20 trials of two concurrent runs whose inputs share names. Every output is whole and
    is the upscale of exactly the one run that reports it written; the other run reports it failed."""
    dark, bright = tmp_path / "dark", tmp_path / "bright"
    dark.mkdir()
    bright.mkdir()
    if kind == "images":
        names = [f"img{i}.png" for i in range(6)]
        for i, name in enumerate(names):
            Image.new("RGB", (16, 12), (30 + i,) * 3).save(dark / name)
            Image.new("RGB", (16, 12), (210 + i,) * 3).save(bright / name)
    else:
        names = ["clip.mp4"]
        for folder, colour in ((dark, "0x202020"), (bright, "0xe0e0e0")):
            _clip(folder / "clip.mp4", video=f"color=c={colour}:size=32x32:rate=25:duration=0.2")
    for trial in range(20):
        out = tmp_path / f"out{trial}"
        runs = racer(*(["upscale", "--model", MODEL, str(src), "-o", str(out)] for src in (dark, bright)))
        claims = [_claims(run, names, src, out) for run, src in zip(runs, (dark, bright))]
        for name in names:
            if kind == "images":
                pixels = np.asarray(Image.open(out / name))
                assert pixels.shape == (24, 32, 3)  # whole: Pillow decodes every row
                owner = 0 if pixels.mean() < 128 else 1
            else:
                n, width, height, luma = _frames(out / name)
                assert (n, width, height) == (5, 64, 64)
                owner = 0 if luma < 128 else 1
            assert [name in c for c in claims] == [owner == 0, owner == 1], (trial, name, runs)
        assert sorted(p.name for p in out.iterdir()) == names  # no temporary file left


# ---------------------------------------------------------------- case 4: stream facts cannot be forged


FORGED_SIZE = "x\nStream #0:0: Video: h264 (High), yuv420p(progressive), 96x160, 25 fps, 25 tbr, 12800 tbn"


def test_a_title_cannot_forge_the_frame_size(tmp_path, model):
    src = _clip(tmp_path / "forged.mp4", extra=("-metadata", f"title={FORGED_SIZE}"))
    info = probe_video(src)
    assert (info.width, info.height, len(info.pts)) == (64, 48, 25)
    out = upscale_video(src, tmp_path / "up.mp4", model, preset="ultrafast", progress=False)
    assert _frames(out)[:3] == (25, 128, 96)


def test_a_title_cannot_forge_a_rotation(tmp_path, model):
    src = _clip(tmp_path / "forged.mkv", muxer="matroska",
                extra=("-metadata:s:v:0", "title=Display Matrix: rotation of 180.00 degrees"))
    assert probe_video(src).rotation == 0.0
    out = upscale_video(src, tmp_path / "up.mkv", model, preset="ultrafast", progress=False)
    assert probe_video(out).rotation == 0.0


def test_a_real_rotation_is_read_from_the_display_matrix(tmp_path):
    plain = _clip(tmp_path / "plain.mp4")
    ffmpeg("-display_rotation", "-90", "-i", str(plain), "-c", "copy", str(tmp_path / "turned.mp4"))
    assert probe_video(tmp_path / "turned.mp4").rotation == -90.0


def test_a_file_named_like_a_protocol_is_read_as_that_file(tmp_path, monkeypatch, capsys):
    """`concat:a.mp4|b.mp4` is a file name here, not FFmpeg's concat protocol over two other files."""
    monkeypatch.chdir(tmp_path)
    _clip(tmp_path / "a.mp4", size="32x32")
    _clip(tmp_path / "b.mp4", size="32x32")
    _clip(tmp_path / "concat:a.mp4|b.mp4", seconds=2)
    assert is_video("concat:a.mp4|b.mp4")
    info = probe_video("concat:a.mp4|b.mp4")
    assert (info.width, info.height, len(info.pts)) == (64, 48, 50)
    assert main(["upscale", "--model", MODEL, "concat:a.mp4|b.mp4", "-o", "out"]) == 0, capsys.readouterr().err
    assert _frames(tmp_path / "out" / "concat:a.mp4|b.mp4")[:3] == (50, 128, 96)


def test_probing_runs_no_ffmpeg_process_and_a_clip_runs_two(clip, model, tmp_path, monkeypatch):
    """Stream facts come from FFmpeg's libraries in this process (PyAV); only the decoder and the encoder run as
    FFmpeg processes, and they are given the input as a `file:` path."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"an FFmpeg process was started: {args[0]}")

    monkeypatch.setattr(subprocess, "run", refuse)
    assert is_video(clip) and len(probe_video(clip).pts) == 25
    spawned = []
    real_spawn = video_pipes.spawn
    monkeypatch.setattr(video_pipes, "spawn", lambda cmd, **kw: (spawned.append(cmd), real_spawn(cmd, **kw))[1])
    upscale_video(clip, tmp_path / "up.mp4", model, preset="ultrafast", progress=False)
    assert len(spawned) == 2
    inputs = [cmd[i + 1] for cmd in spawned for i, arg in enumerate(cmd) if arg == "-i"]
    assert inputs == [f"file:{clip.resolve()}", "pipe:0", f"file:{clip.resolve()}"]


# ---------------------------------------------------------------- case 6: a pixel limit per video frame


def _jpeg(width: int, height: int, value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), value).save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


def test_a_video_frame_over_the_pixel_limit_is_refused_before_decoding(tmp_path, capsys):
    """An MJPEG clip (JPEG files back to back) whose fourth frame is 640x640: over --max-pixels 100000."""
    src = tmp_path / "clip.mjpeg"
    src.write_bytes(_jpeg(64, 64, 100) * 3 + _jpeg(640, 640, 100) * 2)
    out = tmp_path / "out"
    argv = ["upscale", "--model", MODEL, str(src), "-o", str(out / "up.mkv")]
    assert main([*argv, "--max-pixels", "100000"]) == 1
    err = capsys.readouterr().err
    assert (f"tinysr: failed: {src}: frame 4 is 640x640 = 409,600 pixels, over the limit of 100,000; pass "
            "max_pixels= (CLI --max-pixels) to raise it") in err
    assert not out.exists() or list(out.iterdir()) == []
    assert main([*argv, "--max-pixels", "500000"]) == 1  # under the limit: refused as a change of frame size
    assert f"{src}: frame 4 is 640x640, but the stream's frames are 64x64" in capsys.readouterr().err


def test_a_stream_declaring_frames_over_the_limit_is_refused_at_once(clip, model, tmp_path):
    with pytest.raises(TinySRError) as info:
        upscale_video(clip, tmp_path / "up.mp4", model, progress=False, max_pixels=3000)
    assert str(info.value) == (f"{clip}: its frames are 64x48 = 3,072 pixels, over the limit of 3,000; pass "
                               "max_pixels= (CLI --max-pixels) to raise it")
    assert list(tmp_path.iterdir()) == []


def test_the_default_video_pixel_limit_is_the_image_limit(tmp_path, model):
    """Frames of 9500x9500 (90 MP, over Pillow's 89.5 MP): refused before one is decoded."""
    (tmp_path / "big.mjpeg").write_bytes(_jpeg(9500, 9500, 100) * 3)  # 3 MB
    src = tmp_path / "big.avi"
    ffmpeg("-f", "mjpeg", "-framerate", "25", "-i", str(tmp_path / "big.mjpeg"), "-c", "copy", str(src))
    with pytest.raises(TinySRError, match=r"big.avi: .*9500x9500 = 90,250,000 pixels, over the limit of 89,478,485"):
        upscale_video(src, tmp_path / "up.mp4", model, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.avi", "big.mjpeg"]


# ---------------------------------------------------------------- case 11: leftovers of killed runs, escaping


def test_a_killed_image_upscale_leaves_nothing_after_the_next_run(tmp_path, capsys):
    big = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)  # noise: a slow PNG to write
    Image.fromarray(big).save(tmp_path / "big.png", compress_level=1)
    Image.new("RGB", (8, 8)).save(tmp_path / "small.png")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tinysr", "upscale", "--model", MODEL, str(tmp_path / "big.png"),
                             "-o", str(out)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not [p for p in out.glob(".big.png.*.tmp") if p.stat().st_size > 0]:
        assert proc.poll() is None and time.monotonic() < deadline, "the write never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in out.iterdir() if TEMP.match(p.name)]  # what the killed writer left
    live = out / ".live.png.0123abcd.tmp"  # a writer still running (it holds its lock): kept
    live.write_bytes(b"being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (out / ".notes.tmp").write_text("not tinysr's")
    try:
        assert main(["upscale", "--model", MODEL, str(tmp_path / "small.png"), "-o", str(out)]) == 0
    finally:
        os.close(fd)
    assert sorted(p.name for p in out.iterdir()) == [".live.png.0123abcd.tmp", ".notes.tmp", "small.png"]


def test_video_progress_escapes_control_characters(clip, model, tmp_path, capsys):
    src = tmp_path / "a\ntinysr: error: forged.mp4"
    src.write_bytes(clip.read_bytes())
    upscale_video(src, tmp_path / "up.mp4", model, preset="ultrafast", progress=True)
    err = capsys.readouterr().err
    assert "a\\ntinysr: error: forged.mp4" in err and "\ntinysr: error: forged" not in err
