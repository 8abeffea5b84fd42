"""Benchmark: 1920x1080 RGB upscaled x2 by the bundled <=1,000-parameter x2 model through every path.

    python benchmarks/upscale.py [--model tiny-1k-x2|edsr-tiny-x2|RUN|W.safetensors] [--repeats 3] [--big]

Paths, each from an HWC uint8 image to an HWC uint8 3840x2160 result (rounding included):
Pillow `Image.resize(BICUBIC)` (the yardstick), torch (whole image; tiles, as `tinysr upscale --tile 512` runs them:
one tile per core, and one tile at a time on all cores; the collapsed single conv), the fused compiled kernels
(`tinysr.infer.fused`, Numba: what `tinysr upscale` runs for a Y-only tiny net when Numba is installed), ONNX Runtime (the
exported chain, the collapsed conv, int8 QDQ), and the NumPy runtime (its interpreter, and the fused kernels with a
tile per core). The collapsed-conv paths exist for the linear EDSR (0 blocks) only, the fused ones for Y-only tiny
nets with Numba installed; otherwise they are skipped. Each path's runs alternate with Pillow's (Pillow, path,
Pillow, path, ...; one warm-up each; the NumPy interpreter runs once), so that a slow or fast spell of a shared
machine moves both; prints the medians of `--repeats` runs, the path's ratio to the Pillow runs interleaved with it,
and the machine. `--model` is anything `tinysr upscale --model` takes
(default: the bundled `tiny-1k-x2`); the network runs folded (`tinysr.models.deployed`), as `tinysr upscale` runs
it. `--big` also upscales an 8000x8000 image x2 in tiles of 512 in a fresh subprocess and reports its peak RSS
(`resource.getrusage(...).ru_maxrss`).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinysr.export.numpy_export import export_numpy
from tinysr.export.onnx import export_onnx, onnx_session, onnx_window_fn
from tinysr.export.quantize import calibration_crops, quantize_onnx
from tinysr.errors import TinySRError
from tinysr.infer.channels import upscale_with
from tinysr.infer.upscale import network_window_fn, receptive_radius, upscale

from linear_edsr import collapse_linear, collapsed_window_fn, is_linear_edsr  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data")).resolve()


def test_image(width: int = 1920, height: int = 1080) -> np.ndarray:
    """scikit-image's astronaut (real content) resized with Pillow bicubic: HWC RGB uint8."""
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC))


def load_model(spec: str) -> torch.nn.Module:
    from tinysr.infer.load import load_network

    return load_network(spec, scale=None)[0].eval()


def interleaved_ms(fn, pillow, repeats: int) -> tuple[float, float]:
    """Median ms of `fn` and of `pillow`, run alternately `repeats` times each after one warm-up each (oneDNN
    primitives, ORT arenas, Numba's cache load, page faults)."""
    fn(), pillow()
    times, pillow_times = [], []
    for _ in range(repeats):
        for f, into in ((pillow, pillow_times), (fn, times)):
            start = time.perf_counter()
            f()
            into.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), 1000 * statistics.median(pillow_times)


def build_paths(model, img: np.ndarray, tmp: Path) -> dict:
    """name -> zero-argument function producing the uint8 result."""
    from tinysr.export import runtime

    r, s = receptive_radius(model), model.config.scale
    linear = is_linear_edsr(model)
    export_onnx(model, tmp / "chain.onnx")
    if linear:
        export_onnx(collapse_linear(model), tmp / "collapsed.onnx")
    t91 = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((DATA / "T91").glob("*.png"))[:8]]
    crops = calibration_crops(t91, rng=np.random.default_rng(0))
    quantize_onnx(tmp / "chain.onnx", tmp / "int8.onnx", crops=crops)
    export_numpy(model, tmp / "model.npz")
    chain, int8 = (onnx_session(tmp / f"{n}.onnx") for n in ("chain", "int8"))
    numpy_model = runtime.load(tmp / "model.npz")
    big = Image.fromarray(img)
    paths = {
        "pillow bicubic": lambda: big.resize((img.shape[1] * s, img.shape[0] * s), Image.BICUBIC),
        "torch whole": lambda: upscale(img, model, fused=False),
        "torch tiles 512": lambda: upscale(img, model, tile=512, fused=False),  # a tile per core (workers = threads)
        "torch tiles 512, one at a time": lambda: upscale(img, model, tile=512, workers=1, fused=False),
        "onnxruntime chain": lambda: upscale_with(onnx_window_fn(chain), img, scale=s, tile=None, overlap=r),
        "onnxruntime chain, tiles 512": lambda: upscale_with(onnx_window_fn(chain), img, scale=s, tile=512,
                                                             overlap=r),
        "onnxruntime int8 (QDQ)": lambda: upscale_with(onnx_window_fn(int8), img, scale=s, tile=None, overlap=r),
        "numpy runtime, tiles 256": lambda: runtime.upscale(img, numpy_model, tile=256, fused=False),
    }
    if fuses(model):
        paths["fused (Numba), tiles 512"] = lambda: upscale(img, model, tile=512, fused=True)
        paths["fused (Numba), tiles 256"] = lambda: upscale(img, model, tile=256, fused=True)
        paths["numpy runtime + fused, tiles 512"] = lambda: runtime.upscale(img, numpy_model, tile=512, fused=True,
                                                                            workers=os.cpu_count() or 1)
    if linear:
        collapsed = onnx_session(tmp / "collapsed.onnx")
        ort_collapsed = collapsed_window_fn(
            model, interior=lambda x: torch.from_numpy(collapsed.run(["sr"], {"lr": x.numpy()})[0]))
        paths["torch collapsed conv"] = lambda: upscale_with(collapsed_window_fn(model), img, scale=s, tile=None,
                                                             overlap=r)
        paths["onnxruntime collapsed conv"] = lambda: upscale_with(ort_collapsed, img, scale=s, tile=None, overlap=r)
    return paths


def fuses(model) -> bool:
    """Whether `tinysr.infer.fused` serves this model here (a Y-only ReLU tiny net, Numba installed)."""
    try:
        network_window_fn(model, device="cpu", self_ensemble=False, quantize=True, fused=True)
    except TinySRError:
        return False
    return True


def machine() -> str:
    import PIL

    load = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():  # Linux: the model name, which platform.processor() leaves empty
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    try:
        import numba
        numba_version = numba.__version__
    except ImportError:
        numba_version = "not installed"
    return (f"{cpu}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
            f"Pillow {PIL.__version__}, Numba {numba_version}, load average {load[0]:.1f} at start")


def run_speed(args: argparse.Namespace) -> None:
    img, model = test_image(), load_model(args.model)
    params = sum(p.numel() for p in model.parameters())
    print(f"# {img.shape[1]}x{img.shape[0]} RGB -> x{model.config.scale} with {args.model} ({params} parameters); "
          f"{machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_paths(model, img, Path(tmp))
        pillow = paths.pop("pillow bicubic")
        print(f"{'path':<36} {'ms':>9} {'Pillow ms':>10} {'x Pillow':>9}")
        for name, fn in paths.items():
            ms, pillow_ms = interleaved_ms(fn, pillow, 1 if name == "numpy runtime, tiles 256" else args.repeats)
            print(f"{name:<36} {ms:9.1f} {pillow_ms:10.1f} {ms / pillow_ms:9.2f}", flush=True)


def run_big_child(spec: str) -> None:
    """In a fresh process: 8000x8000 RGB x2 with tiles of 512; prints seconds and peak RSS."""
    model = load_model(spec)
    tile = test_image(1000, 1000)
    img = np.ascontiguousarray(np.tile(tile, (8, 8, 1)))
    before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    sr = upscale(img, model, tile=512)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"8000x8000 x2 -> {sr.shape[1]}x{sr.shape[0]} in tiles of 512: {seconds:.1f} s, peak RSS {peak_mib:.0f} MiB "
          f"(before upscaling {before_mib:.0f} MiB; input + output arrays {(img.nbytes + sr.nbytes) / 2**20:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-1k-x2",
                        help="a bundled model, run folder or weights file (default: tiny-1k-x2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also the 8000x8000 peak-memory run")
    parser.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child:
        return run_big_child(args.model)
    if args.big:  # first: Linux's ru_maxrss of a forked child starts at the parent's RSS, kept small here
        cmd = [sys.executable, __file__, "--big-child", "--model", args.model]
        subprocess.run(cmd, check=True)
    run_speed(args)


if __name__ == "__main__":
    main()
