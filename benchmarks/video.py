"""Benchmark: a video clip upscaled x2 by `tinysr.upscale_video`, encode included, against FFmpeg's own bicubic.

    python benchmarks/video.py [--model tiny-1k-x2] [--sizes 960x540 1280x720] [--seconds 3] [--fps 30]
                               [--presets ultrafast veryfast] [--engine fused|torch|auto] [--psnr-data DIR ...]

For each size, a testsrc2 clip with a sine track (H.264 CRF 18 + AAC, made in a temp folder) is upscaled:
- tinysr: `upscale_video(clip, out.mp4, model, preset=P, yuv=...)` (libx264 CRF 18 yuv420p, audio copied), whole
  run timed, by the YUV route (the net on the luma plane) and the RGB route (`tinysr.upscale` on RGB frames);
- FFmpeg: ``ffmpeg -i clip -vf scale=iw*2:ih*2:flags=bicubic -c:v libx264 -crf 18 -preset P -c:a copy``;
then the breakdown of tinysr's stages, each alone on the first `--breakdown` frames: decode (to raw RGB in memory),
net (`tinysr.upscale` on a thread pool, frames in memory), encode (the raw upscaled RGB frames piped to the same
encoder), and the colour conversions that the RGB path adds (YUV -> RGB at decode, RGB -> YUV at encode), which
a YUV path would not pay. Prints fps, the ratio to FFmpeg bicubic, the CPU time per frame (this process and its
FFmpeg children: on a shared machine it says what free cores would do), the output bitrate, the machine and the
presets. Last, the PSNR of the two routes on real images (`--psnr-data`, default Set5 + Set14; see
`psnr_routes`).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinysr.cpu import cores
from tinysr.infer.upscale import upscale
from tinysr.infer.load import load_network
from tinysr.video.upscale import SWS_FLAGS, upscale_video
from tinysr.video.probe import ffmpeg_exe
from tinysr.video.yuv import luma_net, upscale_yuv420_frame

DATA = Path(os.environ.get("TINYSR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")).resolve()
ENGINES = {"fused": True, "torch": False, "auto": None}
ROUTES = {"yuv": True, "rgb": False}


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          input=stdin, check=True, capture_output=True).stdout


def make_clip(folder: Path, *, width: int, height: int, seconds: int, fps: int) -> Path:
    clip = folder / f"clip{width}x{height}.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-crf", "18",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    return clip


def timed(fn) -> float:
    return measured(fn)[0]


def measured(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) of fn(): the CPU time does not depend on what
    else runs on a shared machine, so it bounds the speed on free cores."""
    def cpu() -> float:
        return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))
    start, cpu_start = time.perf_counter(), cpu()
    fn()
    return time.perf_counter() - start, cpu() - cpu_start


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    version = ffmpeg("-version").decode().split("\n", 1)[0]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    torch = sys.modules.get("torch")  # the core install has none; with it, the RGB route's torch engine is timed
    engines = f"torch {torch.__version__}" if torch else "no torch"
    return f"{cpu}, {os.cpu_count()} cores (load average {load}), {engines}, {version}"


def warm_up(model, *, fused: bool | None) -> None:
    """Load both routes' compiled kernels (Numba's import and cached code, ~1 s once per process) before timing."""
    frame = np.zeros((16, 16, 3), np.uint8)
    upscale(frame, model, fused=fused, workers=1)
    net = luma_net(model)
    if net is not None:
        upscale_yuv420_frame(net, np.zeros(16 * 16 * 3 // 2, np.uint8), width=16, height=16)


def breakdown(clip: Path, model, *, frames: int, fused: bool | None, preset: str,
              folder: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per frame of each stage alone, on the first `frames` frames. The upscaled frames go
    to the encoder from a raw file here (in the real run, through a pipe)."""
    width, height = map(int, clip.stem.removeprefix("clip").split("x"))
    args = ["-i", str(clip), "-frames:v", str(frames), "-f", "rawvideo"]
    stages = {"decode": measured(lambda: ffmpeg(*args, "-vf", f"scale=flags={SWS_FLAGS}", "-pix_fmt", "rgb24", "-")),
              "decode to yuv420p instead": measured(lambda: ffmpeg(*args, "-pix_fmt", "yuv420p", "-"))}
    lr = np.frombuffer(ffmpeg(*args, "-pix_fmt", "rgb24", "-"), np.uint8).reshape(-1, height, width, 3)
    with ThreadPoolExecutor(cores()) as pool:
        run = lambda: list(pool.map(lambda f: upscale(f, model, fused=fused, workers=1), lr))  # noqa: E731
        run()  # warm-up: the kernels' first load
        stages["net (rgb route)"] = measured(run)
        (folder / "sr.rgb").write_bytes(np.stack(run()).tobytes())
        yuv = np.frombuffer(ffmpeg(*args, "-pix_fmt", "yuv420p", "-"), np.uint8).reshape(len(lr), -1)
        net = luma_net(model)
        stages["net (yuv route)"] = measured(
            lambda: list(pool.map(lambda f: upscale_yuv420_frame(net, f, width=width, height=height), yuv)))
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{2 * width}x{2 * height}", "-i",
           str(folder / "sr.rgb"), "-vf", f"scale=out_color_matrix=bt709:out_range=tv:flags={SWS_FLAGS},format=yuv420p"]
    stages["rgb->yuv420p"] = measured(lambda: ffmpeg(*raw, "-f", "null", "-"))
    stages["encode (rgb route, incl. rgb->yuv420p)"] = measured(
        lambda: ffmpeg(*raw, "-c:v", "libx264", "-crf", "18", "-preset", preset, "-f", "mp4", os.devnull))
    (folder / "sr.rgb").unlink()
    return {name: (wall / len(lr), cpu / len(lr)) for name, (wall, cpu) in stages.items()}


def psnr_routes(folders: list[Path], model, *, tmp: Path) -> dict[str, list[float]]:
    """PSNR of each route on real images, each as a one-frame video: HR mod-cropped to 4, LR by MATLAB bicubic
    (float path, as the training data), stored as lossless 4:2:0 (FFV1, untagged: BT.601 limited range, as SD
    video), upscaled losslessly (FFV1 yuv420p out), decoded to RGB. Also the image path (`tinysr.upscale` on the
    RGB LR, no 4:2:0). Returns per route [standard (Y, crop 2), study (RGB)] PSNRs per image."""
    from PIL import Image

    from tinysr.metrics import PROTOCOLS, prepare_pair, psnr
    from tinysr.resize import imresize, to_uint8

    scores: dict[str, list[tuple[float, float]]] = {"image (RGB, no 4:2:0)": [], "rgb route": [], "yuv route": []}
    for path in sorted(p for folder in folders for p in folder.iterdir() if p.suffix == ".png"):
        hr = np.asarray(Image.open(path).convert("RGB"))
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        lr = to_uint8(imresize(hr.astype(np.float64), 0.5))
        clip = tmp / "one.mkv"
        ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{lr.shape[1]}x{lr.shape[0]}", "-i", "-",
               "-c:v", "ffv1", "-pix_fmt", "yuv420p", str(clip), stdin=lr.tobytes())
        results = {"image (RGB, no 4:2:0)": upscale(lr, model)}
        for route, yuv in ROUTES.items():
            out = upscale_video(clip, tmp / "sr.mkv", model, yuv=yuv, codec="ffv1", crf=None, preset=None,
                                progress=False, force=True)
            raw = ffmpeg("-i", str(out), "-vf", f"scale=flags={SWS_FLAGS}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
            results[f"{route} route"] = np.frombuffer(raw, np.uint8).reshape(hr.shape)
        for name, sr in results.items():
            scores[name].append(tuple(psnr(*prepare_pair(sr, hr, scale=2, protocol=PROTOCOLS[p]))
                                      for p in ("standard", "study")))
    return {name: [float(np.mean([s[i] for s in values])) for i in range(2)] for name, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-1k-x2")
    parser.add_argument("--sizes", nargs="+", default=["960x540", "1280x720"])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--presets", nargs="+", default=["ultrafast", "veryfast"])
    parser.add_argument("--engine", choices=ENGINES, default="fused")
    parser.add_argument("--breakdown", type=int, default=30, help="frames for the per-stage timings")
    parser.add_argument("--psnr-data", nargs="*", type=Path, default=[DATA / "Set5", DATA / "Set14"],
                        help="folders of PNGs for the PSNR of each route (none: skip)")
    args = parser.parse_args()
    model = load_network(args.model, scale=None)[0]
    warm_up(model, fused=ENGINES[args.engine])
    print(f"machine: {machine()}")
    print(f"model {args.model}, engine {args.engine}, x264 CRF 18 yuv420p, audio copied")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            clip = make_clip(Path(tmp), width=width, height=height, seconds=args.seconds, fps=args.fps)
            n = args.seconds * args.fps
            for preset in args.presets:
                bicubic = measured(lambda: ffmpeg("-i", str(clip), "-vf", "scale=iw*2:ih*2:flags=bicubic", "-c:v",
                                                  "libx264", "-crf", "18", "-preset", preset, "-pix_fmt", "yuv420p",
                                                  "-c:a", "copy", str(Path(tmp) / "bicubic.mp4")))
                print(f"{size} -> {2 * width}x{2 * height}, preset {preset}, {n} frames: ffmpeg bicubic "
                      f"{n / bicubic[0]:.1f} fps (CPU {bicubic[1] / n * 1000:.0f} ms/frame)")
                for route, yuv in ROUTES.items():
                    out = Path(tmp) / "sr.mp4"
                    ours = measured(lambda: upscale_video(clip, out, model, fused=ENGINES[args.engine], yuv=yuv,
                                                          preset=preset, progress=False, force=True))
                    print(f"  tinysr {route} route: {n / ours[0]:.1f} fps, ratio {bicubic[0] / ours[0]:.2f} "
                          f"(CPU {ours[1] / n * 1000:.0f} ms/frame, {out.stat().st_size * 8 / args.seconds / 1e6:.1f} "
                          f"Mb/s)")
            parts = breakdown(clip, model, frames=args.breakdown, fused=ENGINES[args.engine], preset=args.presets[0],
                              folder=Path(tmp))
            print(f"  breakdown, ms per frame wall / CPU, each stage alone (encode preset {args.presets[0]}): "
                  + ", ".join(f"{k} {wall * 1000:.1f} / {cpu * 1000:.1f}" for k, (wall, cpu) in parts.items()))
        if args.psnr_data:
            names = ", ".join(folder.name for folder in args.psnr_data)
            for name, (standard, study) in psnr_routes(args.psnr_data, model, tmp=Path(tmp)).items():
                print(f"PSNR on {names} (mean per image): {name}: standard {standard:.3f} dB, study {study:.3f} dB")

if __name__ == "__main__":
    main()
