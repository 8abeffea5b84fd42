"""tinysr.video.upscale and tinysr.video.probe on small clips that FFmpeg generates here (testsrc2 + a sine track).

Each clip is compared with its upscale through FFmpeg itself: frame counts and timestamps (`framecrc`), the audio
and subtitle packets byte for byte (`framemd5` of ``-c copy``), and, through a lossless codec, every frame's pixels
against `tinysr.upscale` of the decoded input frame.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tinysr.video.upscale as video
import tinysr.video.pipes as video_pipes
from tinysr.errors import TinySRError
from tinysr.infer.upscale import upscale
from tinysr.resize import imresize
from tinysr.infer.load import load_network
from tinysr.video.upscale import SWS_FLAGS, pts_segments, upscale_video
from tinysr.video.pipes import sigterm_as_interrupt
from tinysr.video.probe import ffmpeg_exe, is_video, probe_video
from tinysr.video.yuv import luma_net, upscale_luma

pytestmark = pytest.mark.usefixtures("one_thread")

W, H, FPS, SECONDS = 64, 48, 25, 2
MODEL = "tiny-1k-x2"
TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
#: 50 frames whose durations grow from 30 to 79 ms (frame n at n^2/2 + 30 n ms): no two alike.
VFR = f"settb=1/1000,setpts='N*N/2+N*30',{TAGS}"


def ffmpeg(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run FFmpeg quietly, failing the test on an error."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          input=stdin, check=True, capture_output=True)


def sources(seconds: int = SECONDS) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]


def packets(path: Path, stream: str) -> list[tuple[float, int, str]]:
    """(pts in seconds, size, MD5) of each packet of the first `stream` ("a", "s"), copied out by FFmpeg."""
    out = ffmpeg("-i", str(path), "-map", f"0:{stream}:0", "-c", "copy", "-f", "framemd5", "-").stdout.decode()
    num, den = map(int, re.search(r"^#tb 0: (\d+)/(\d+)$", out, re.M).groups())
    rows = [line.split(",") for line in out.splitlines() if not line.startswith("#")]
    return [(int(r[2]) * num / den, int(r[4]), r[5].strip()) for r in rows]


def same_packets(a: list[tuple[float, int, str]], b: list[tuple[float, int, str]]) -> bool:
    """Byte-identical packets at the same times, to the millisecond (Matroska stores milliseconds)."""
    return len(a) == len(b) and all(abs(ta - tb) <= 1e-3 and rest_a == rest_b
                                    for (ta, *rest_a), (tb, *rest_b) in zip(a, b))


def rgb_frames(path: Path) -> np.ndarray:
    """Every frame as stored (not rotated), N x H x W x 3 uint8 RGB, converted as the RGB route converts."""
    info = probe_video(path)
    raw = ffmpeg("-noautorotate", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-vf",
                 f"scale=flags={SWS_FLAGS}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)


def yuv420_planes(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every frame's Y (N x H x W), U and V (N x H/2 x W/2), uint8, as decoded."""
    raw = ffmpeg("-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, width * height * 3 // 2)
    luma, quarter = width * height, width * height // 4
    return (frames[:, :luma].reshape(-1, height, width),
            frames[:, luma:luma + quarter].reshape(-1, height // 2, width // 2),
            frames[:, luma + quarter:].reshape(-1, height // 2, width // 2))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """cfr.mp4 (H.264 + AAC, tagged BT.709), rotated.mp4 (the same, display matrix 90 degrees), vfr.mkv (variable
    frame rate, AAC and SubRip subtitles)."""
    root = tmp_path_factory.mktemp("clips")
    (root / "subs.srt").write_text("1\n00:00:00,200 --> 00:00:01,000\nhello\n\n2\n00:00:01,100 --> 00:00:01,800\n"
                                   "world\n")
    ffmpeg(*sources(), "-vf", TAGS, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(root / "cfr.mp4"))
    ffmpeg("-display_rotation", "90", "-i", str(root / "cfr.mp4"), "-c", "copy", str(root / "rotated.mp4"))
    ffmpeg(*sources(), "-i", str(root / "subs.srt"), "-vf", VFR, "-fps_mode", "passthrough", "-enc_time_base:v",
           "1/1000", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt", str(root / "vfr.mkv"))
    return {p.name: p for p in root.iterdir()}


@pytest.fixture(scope="module")
def model():
    return load_network(MODEL, scale=None)[0]


# ---------------------------------------------------------------------------------------------------- timestamps


def test_pts_segments_rebuild_every_timestamp():
    rng = np.random.default_rng(0)
    for pts in ([0, 512, 1024, 1536], [7], [0, 0, 40, 80, 100, 120, 200],
                np.cumsum(rng.integers(0, 4, 300)).tolist()):
        segments = pts_segments(tuple(pts))
        rebuilt = [p0 + (n - n0) * step for n in range(len(pts))
                   for n0, p0, step in [max(s for s in segments if s[0] <= n)]]
        assert rebuilt == pts
    assert pts_segments((0, 512, 1024, 1536)) == [(0, 0, 512)]  # constant rate: one run


# ---------------------------------------------------------------------------------------------------- what is kept


def test_lossless_output_is_tinysr_upscale_of_each_frame(clips, model, tmp_path):
    src = clips["cfr.mp4"]
    out = upscale_video(src, tmp_path / "out.mkv", model, codec="ffv1", crf=None, preset=None, pix_fmt="gbrp",
                        progress=False, workers=2, yuv=False)
    assert out == tmp_path / "out.mkv" and sorted(os.listdir(tmp_path)) == ["out.mkv"]
    lr, sr = rgb_frames(src), rgb_frames(out)
    assert lr.shape == (FPS * SECONDS, H, W, 3) and sr.shape == (FPS * SECONDS, 2 * H, 2 * W, 3)
    expected = np.stack([upscale(frame, model) for frame in lr])
    diff = np.abs(sr.astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3
    assert same_packets(packets(out, "a"), packets(src, "a"))
    seconds = [[float(p * info.time_base) for p in info.pts] for info in (probe_video(out), probe_video(src))]
    assert np.allclose(*seconds, rtol=0, atol=1e-3)  # Matroska counts milliseconds, this MP4 1/12800 s


def test_yuv_route_runs_the_net_on_the_luma_plane(clips, model, tmp_path):
    src = clips["cfr.mp4"]
    out = upscale_video(src, tmp_path / "out.mkv", model, codec="ffv1", crf=None, preset=None, progress=False)
    lr, sr = yuv420_planes(src, W, H), yuv420_planes(out, 2 * W, 2 * H)
    assert len(lr[0]) == len(sr[0]) == FPS * SECONDS
    net = luma_net(model)
    expected = np.stack([upscale_luma(net, y) for y in lr[0]])
    with torch.no_grad():  # the same luma through torch: TinySR.forward_luma's arithmetic on the decoded Y
        t = torch.from_numpy(lr[0][:1].astype(np.float32))[:, None]
        torch_model = model.to_torch()
        reference = (torch_model.residual(t / 255.0) * 255.0 + torch_model.upsample(t)).clamp(0, 255).round()
    assert np.array_equal(expected[:1], reference[:, 0].numpy().astype(np.uint8))
    assert np.array_equal(sr[0], expected)  # the encoder kept the upscaled luma bit for bit
    for got, lr_plane in zip(sr[1:], lr[1:]):  # chroma: MATLAB bicubic (the float path, rounded half to even)
        want = np.stack([np.round(imresize(p.astype(np.float64), 2.0)).clip(0, 255) for p in lr_plane])
        assert got.shape == want.shape and np.abs(got - want).max() <= 1 and (got != want).mean() < 1e-3


def test_variable_frame_rate_audio_and_subtitles_kept(clips, model, tmp_path):
    src = clips["vfr.mkv"]
    (tmp_path / "vfr.mkv").write_bytes(b"old")
    out = upscale_video(src, tmp_path, model, preset="ultrafast", progress=False, force=True)
    before, after = probe_video(src), probe_video(out)
    assert len(before.pts) == FPS * SECONDS and len(set(np.diff(before.pts))) > 20  # really variable
    assert after.pts == before.pts and after.durations[-1] == before.durations[-1]
    assert (after.width, after.height) == (2 * W, 2 * H)
    assert same_packets(packets(out, "a"), packets(src, "a"))
    assert same_packets(packets(out, "s"), packets(src, "s")) and len(packets(src, "s")) == 2


def test_mp4_keeps_rotation_colour_and_timestamps(clips, model, tmp_path):
    src = clips["rotated.mp4"]
    out = upscale_video(src, tmp_path / "up.mp4", model, preset="ultrafast", progress=False)
    before, after = probe_video(src), probe_video(out)
    assert before.rotation == 90.0 and after.rotation == 90.0
    assert (before.color_range, before.colorspace) == ("tv", "bt709")
    keys = ("color_range", "colorspace", "color_primaries", "color_trc", "pix_fmt", "sar", "time_base")
    assert {k: getattr(after, k) for k in keys} == {k: getattr(before, k) for k in keys}
    assert after.pts == before.pts and len(after.pts) == FPS * SECONDS
    assert same_packets(packets(out, "a"), packets(src, "a"))


def test_is_video_judges_content(clips, tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "image.png")
    (tmp_path / "image.png").rename(tmp_path / "image.mp4")
    (tmp_path / "notes.txt").write_text("not a video\n")
    assert is_video(clips["cfr.mp4"]) and is_video(clips["vfr.mkv"])
    assert not is_video(tmp_path / "image.mp4") and not is_video(tmp_path / "notes.txt")
    assert not is_video(tmp_path / "missing.mp4")


# ---------------------------------------------------------------------------------------------------- refusals


def _bad_input(kind: str, folder: Path, clips: dict[str, Path]) -> Path:
    path = folder / f"bad {kind}\nname.mp4"  # a newline in the name: the message must stay one line
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "image":
        Image.new("RGB", (16, 16), "red").save(path, format="PNG")
    elif kind == "audio-only":
        ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-f", "mp4", str(path))
    elif kind == "truncated":
        ffmpeg("-i", str(clips["cfr.mp4"]), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(path))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind in ("10-bit", "alpha"):
        fmt = {"10-bit": "yuv420p10le", "alpha": "yuva420p"}[kind]
        ffmpeg(*sources(1)[:4], "-c:v", "ffv1", "-pix_fmt", fmt, "-f", "matroska", str(path))
    return path


@pytest.mark.parametrize("kind, says", [("text", "not a video"), ("image", "not a video"),
                                        ("audio-only", "no video stream"), ("truncated", "truncated"),
                                        ("10-bit", "yuv420p10le is not supported"),
                                        ("alpha", "yuva420p is not supported")])
def test_bad_input_is_one_line_naming_the_file(kind, says, clips, model, tmp_path):
    src = _bad_input(kind, tmp_path, clips)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TinySRError) as info:
        upscale_video(src, out / "x.mp4", model, progress=False)
    message = str(info.value)
    assert "\n" not in message and f"bad {kind}\\nname.mp4" in message and says in message
    assert os.listdir(out) == []


def test_refuses_existing_output_and_the_input(clips, model, tmp_path):
    (tmp_path / "exists.mp4").write_bytes(b"keep")
    with pytest.raises(TinySRError, match="exists; force=True"):
        upscale_video(clips["cfr.mp4"], tmp_path / "exists.mp4", model, progress=False)
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep"
    with pytest.raises(TinySRError, match="is the input"):
        upscale_video(clips["cfr.mp4"], clips["cfr.mp4"], model, progress=False, force=True)


def test_full_disk_is_one_line_and_leaves_nothing(clips, model, tmp_path, monkeypatch):
    def capped(cmd, **kwargs):  # the encoder may write 20 kB: then write() fails with EFBIG, like a full disk
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        return subprocess.Popen(cmd, preexec_fn=limit if "stdin" in kwargs else None, **kwargs)

    monkeypatch.setattr(video_pipes, "spawn", capped)
    with pytest.raises(TinySRError) as info:
        upscale_video(clips["cfr.mp4"], tmp_path / "big.mkv", model, codec="ffv1", crf=None, preset=None,
                      pix_fmt="gbrp", progress=False)
    assert "\n" not in str(info.value) and "big.mkv: FFmpeg could not write it" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_interrupt_removes_the_partial_output(clips, model, tmp_path, monkeypatch, capsys):
    calls = []

    def interrupted(frame, net, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return upscale(frame, net, **kwargs)

    monkeypatch.setattr(video, "upscale", interrupted)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clips["cfr.mp4"], tmp_path / "out.mp4", model, fused=False, yuv=False, progress=False,
                      workers=1)
    assert os.listdir(tmp_path) == []
    assert re.fullmatch(f"tinysr: interrupted; removed the partial output {re.escape(str(tmp_path))}/"
                        r"\.out\.mp4\.[0-9a-f]{8}\.tmp", capsys.readouterr().err.strip())


def test_sigterm_becomes_an_interrupt():
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.1)  # the handler runs at the next bytecode; give it one
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_package_root_names_upscale_video():
    import tinysr

    assert tinysr.upscale_video is upscale_video
