"""Published tiny SR models beside tinysr's bundled nets: the same LR, one protocol, one run (issue 26).

    python benchmarks/peers.py --esr PATH/eSR [--opencv-pb PATH/FSRCNN_x4.pb PATH/ESPCN_x4.pb ...]
        [--data ../shared/data] [--sets Set5 Set14 BSD100 Urban100] [--scales 2 3 4]
        [--jpeg 30 50 75 90] [--jpeg-sets BSD100] [--limit N] [--json OUT] [--plot OUT.png]

Where each model comes from (nothing of theirs is in this repository; the script takes paths):
* edge-SR (Navarrete Michelini, Lu and Jiang, "edge-SR: Super-Resolution For The Masses", WACV 2022): a checkout of
  github.com/pnavarre/eSR given as --esr. Its `models.py` defines the nets (eSR-TM, eSR-TR, eSR-CNN, and its own
  ESPCN and FSRCNN), `model-files/<id>.model` holds each one's state dict (read with `torch.load(weights_only=True)`).
  Which ids are run: `ESR_MODELS`.
* OpenCV's dnn_superres (needs `opencv-contrib-python-headless<5`): .pb files given as --opencv-pb, named as their
  authors publish them: `FSRCNN_xS.pb` and `FSRCNN-small_xS.pb` (github.com/Saafke/FSRCNN_Tensorflow, models/) and
  `ESPCN_xS.pb` (github.com/fannymonori/TF-ESPCN, export/). They run as a user calls them: `DnnSuperResImpl.upsample`
  on the BGR image (its own Y/CrCb split and chroma upscaling).
* tinysr: every bundled net of the scale, run as `tinysr eval` runs it (`resolve_upscaler`); and MATLAB bicubic.

The LR (made once per set, scale and degradation, written as PNG to a temporary folder, and read back by every model
through `tinysr.evaluate.evaluate(lr_data=...)`): the `bicubic` degradation of the mod-cropped HR (MATLAB imresize,
rounded to uint8), or `bicubic+jpegQ` (then a Pillow JPEG of quality Q). The protocol is `standard` (printed).

The edge-SR nets are grey: one channel in 0..1. They get the full-range luma of the LR, (Y - 16) / 219 with Y from
MATLAB rgb2ycbcr, which is 0.299 R + 0.587 G + 0.114 B / 255, the grey of Pillow's convert("L") (their run.py) before
rounding. Their output is put back as Y = 16 + 219 out, beside MATLAB-bicubic Cb and Cr (`luma_upscaler`). Fed the
16..235 Y / 255 instead, eSR-CNN C2D9S3 x2 loses 0.06 dB on Set5 (36.175 against 36.233).

Cost columns:
* params: trainable parameters (PReLU slopes included); for a .pb, every weight blob of its graph.
* MMACs: multiply-accumulates of the convs for one 1280 x 720 output (the convention of `tinysr.models.complexity`:
  zero padding counted; biases, activations, pixel shuffle, tinysr's bicubic anchor and every model's colour
  conversion and chroma upscaling not counted). A transposed conv (FSRCNN's) counts C_in k^2 C_out per input pixel.
* ms: one 720p output (LR 1280/s x 720/s, cut from the first image of the first set, tiled if smaller), the fastest
  of --repeats runs (the one least disturbed by other work on a shared box), with the process pinned to one core
  (torch and OpenCV on one thread). `e2e` is the whole upscaler of the table, RGB in, RGB out: tinysr's engine
  (`tinysr upscale`'s), OpenCV's upsample, and for edge-SR the authors' module in torch plus this script's NumPy
  colour path. `net` is the network alone on the luma (torch for edge-SR and tinysr, OpenCV's dnn for a .pb);
  tinysr's includes its bicubic anchor. --time-only measures these columns alone (a second run on a quieter box,
  merged by --from-json A.json B.json).

Speed depends on the box and on what else runs on it: compare rows of one run only. Test sets are measured, never
used to choose anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from tinysr.color import rgb_to_ycbcr, ycbcr_to_rgb
from tinysr.data.degrade import degrade, mod_crop
from tinysr.data.io import read_image
from tinysr.data.folder import image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import Upscaler, bicubic_upscaler, evaluate
from tinysr.infer.load import bundled_names, resolve_upscaler
from tinysr.metrics import PROTOCOLS
from tinysr.models import count_params
from tinysr.models.complexity import conv_macs_per_lr_pixel
from tinysr.models.weights import load_model
from tinysr.pretrained import pretrained_path
from tinysr.resize import imresize

PROTOCOL = PROTOCOLS["standard"]
OUT_H, OUT_W = 720, 1280  # the output the MACs and the timings are for

# edge-SR ids run at each scale (`model-files/<id>.model` of the checkout). Per family, the member with the best
# BSD100 in the authors' own table (their data/tests.pkl) among those of <= 1k parameters and among those of <= 5k
# (eSR-TM and eSR-TR: <= 5k only; at <= 1k they trail eSR-CNN by 0.4-0.9 dB in that table), plus at every scale eSR-CNN
# C2D9S3 (912 parameters at x2), ESPCN D12S18 (4,882 at x4: issue 26's reference) and FSRCNN D56S12M4 (the FSRCNN
# paper's net, 12.6k, above the budgets, for scale).
ESR_MODELS: dict[int, tuple[str, ...]] = {
    2: ("eSR-TM_s2_K7_C12", "eSR-TR_s2_K7_C8", "eSR-CNN_s2_C2_D9_S3", "eSR-CNN_s2_C8_D5_S6", "ESPCN_s2_D8_S6",
        "ESPCN_s2_D9_S27", "ESPCN_s2_D12_S18", "FSRCNN_s2_D6_S3_M1", "FSRCNN_s2_D32_S9_M1", "FSRCNN_s2_D56_S12_M4"),
    3: ("eSR-TM_s3_K5_C11", "eSR-TR_s3_K5_C7", "eSR-CNN_s3_C2_D9_S3", "eSR-CNN_s3_C4_D9_S6", "ESPCN_s3_D9_S3",
        "ESPCN_s3_D10_S27", "ESPCN_s3_D12_S18", "FSRCNN_s3_D6_S3_M1", "FSRCNN_s3_D32_S9_M1", "FSRCNN_s3_D56_S12_M4"),
    4: ("eSR-TM_s4_K5_C6", "eSR-TR_s4_K5_C4", "eSR-CNN_s4_C2_D9_S3", "eSR-CNN_s4_C4_D9_S3", "ESPCN_s4_D2_S3",
        "ESPCN_s4_D12_S18", "FSRCNN_s4_D6_S3_M1", "FSRCNN_s4_D32_S9_M1", "FSRCNN_s4_D56_S12_M4"),
}
# The class of models.py that builds each id, by the id's first field.
ESR_CLASSES = {"eSR-MAX": "edgeSR_MAX", "eSR-TM": "edgeSR_TM", "eSR-TR": "edgeSR_TR", "eSR-CNN": "edgeSR_CNN",
               "ESPCN": "ESPCN", "FSRCNN": "FSRCNN"}
# OpenCV dnn_superres: the algorithm name setModel takes, by the .pb's published file-name stem (without _xS).
OPENCV_ALGORITHMS = {"FSRCNN": "fsrcnn", "FSRCNN-small": "fsrcnn", "ESPCN": "espcn"}
OPENCV_SOURCES = {"FSRCNN": "Saafke/FSRCNN_Tensorflow", "FSRCNN-small": "Saafke/FSRCNN_Tensorflow",
                  "ESPCN": "fannymonori/TF-ESPCN"}


@dataclass
class Peer:
    """One row: a model of one scale, where it comes from, its cost, and how to run it.

    upscale: HWC RGB uint8 LR -> HWC RGB SR (float or uint8, 0..255), what the table measures.
    net: the network alone on an HW luma plane in 0..1 (for the `net` ms column), or None."""

    name: str
    scale: int
    source: str
    params: int
    macs_per_lr_pixel: int
    upscale: Upscaler
    net: Callable[[np.ndarray], object] | None = None
    psnr: dict[str, float] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)

    @property
    def macs_720p(self) -> int:
        return macs_720p(self.macs_per_lr_pixel, self.scale)


# ---------------------------------------------------------------- step 1: cost (parameters, MACs)

def macs_720p(macs_per_lr_pixel: int, scale: int) -> int:
    """MACs for one 1280 x 720 output: per-LR-pixel MACs times 1280 x 720 / scale^2 (a whole number at x2, x3, x4)."""
    return macs_per_lr_pixel * (OUT_H * OUT_W) // (scale * scale)


def torch_cost(module: nn.Module, *, in_channels: int = 1, probe: int = 8) -> tuple[int, int]:
    """(trainable parameters, conv MACs per LR pixel) of a torch net whose convs all keep the LR grid's size.

    Counted with forward hooks on a probe x probe input: a Conv2d costs C_in / groups k_h k_w C_out per output
    position, a ConvTranspose2d C_in k_h k_w C_out / groups per input position (every input pixel scatters a
    kernel). A conv whose count is not linear in the probe's area (not "same"-padded) raises."""
    counts: list[int] = []

    def hook(conv: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        kh, kw = conv.kernel_size
        if isinstance(conv, nn.ConvTranspose2d):
            positions = inputs[0].shape[-2] * inputs[0].shape[-1]
            counts.append(positions * conv.in_channels * kh * kw * conv.out_channels // conv.groups)
        else:
            positions = output.shape[-2] * output.shape[-1]
            counts.append(positions * conv.in_channels // conv.groups * kh * kw * conv.out_channels)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            module(torch.zeros(1, in_channels, probe, probe))
    finally:
        for h in handles:
            h.remove()
    if sum(counts) % (probe * probe):
        raise ValueError(f"conv MACs {sum(counts)} are not linear in the {probe}x{probe} probe's area")
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return params, sum(counts) // (probe * probe)


# ---------------------------------------------------------------- step 2: the grey path (edge-SR nets)

def luma_upscaler(net: Callable[[np.ndarray], np.ndarray], scale: int) -> Upscaler:
    """An RGB upscaler from a grey net (HW float in 0..1 -> HW float, `scale` times larger).

    Convention: LR is HWC RGB uint8; the net sees the full-range luma (Y - 16) / 219 (Y: MATLAB rgb2ycbcr); its
    output goes back as Y = 16 + 219 out beside MATLAB-bicubic Cb, Cr; returns HWC RGB float64, unrounded."""

    def run(lr: np.ndarray) -> np.ndarray:
        ycbcr = rgb_to_ycbcr(lr)
        y = net((ycbcr[..., 0] - 16.0) / 219.0)
        sr = imresize(ycbcr, float(scale))
        if y.shape != sr.shape[:2]:
            raise ValueError(f"grey net gave {y.shape}, expected {sr.shape[:2]}")
        sr[..., 0] = 16.0 + 219.0 * y
        return ycbcr_to_rgb(sr)

    return run


def torch_grey(module: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """HW float grey -> HW float64 output of a 1-in, 1-out torch net (float32, no grad)."""

    def run(grey: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))[None, None])
        return out[0, 0].numpy().astype(np.float64)

    return run


# ---------------------------------------------------------------- step 3: the rows

def esr_module(checkout: Path):
    """The checkout's models.py, imported from its path (one-line TinySRError when it is not an eSR checkout)."""
    path = checkout / "models.py"
    if not path.is_file() or not (checkout / "model-files").is_dir():
        raise TinySRError(f"{checkout}: --esr needs a checkout of github.com/pnavarre/eSR (models.py, model-files/)")
    spec = importlib.util.spec_from_file_location("esr_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def esr_name(model_id: str) -> str:
    """'eSR-CNN_s2_C2_D9_S3' -> 'eSR-CNN C2D9S3' (the scale is the table's)."""
    family, *fields = model_id.split("_")
    kept = "".join(f for f in fields if not re.fullmatch(r"s\d+", f))
    return f"{family} {kept}"


def esr_peer(models_py, checkout: Path, model_id: str) -> Peer:
    family, scale = model_id.split("_")[0], int(model_id.split("_")[1][1:])
    path = checkout / "model-files" / f"{model_id}.model"
    if not path.is_file():
        raise TinySRError(f"{path}: no such edge-SR model file")
    module = getattr(models_py, ESR_CLASSES[family])(model_id).eval()
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    params, macs = torch_cost(module)
    grey = torch_grey(module)
    return Peer(esr_name(model_id), scale, f"pnavarre/eSR model-files/{model_id}.model", params, macs,
                luma_upscaler(grey, scale), net=grey)


def opencv_peer(path: Path) -> Peer:
    """A dnn_superres .pb (algorithm and scale from its published file name, e.g. FSRCNN-small_x4.pb)."""
    match = re.fullmatch(r"(.+)_x([234])\.pb", path.name)
    if not path.is_file() or match is None or match[1] not in OPENCV_ALGORITHMS:
        raise TinySRError(f"{path}: --opencv-pb takes {', '.join(f'{k}_xS.pb' for k in OPENCV_ALGORITHMS)} files")
    try:
        import cv2
    except ImportError as err:
        raise TinySRError(f"{path}: OpenCV models need opencv-contrib-python-headless<5 ({err})") from None
    if not hasattr(cv2, "dnn_superres") or int(cv2.__version__.split(".")[0]) >= 5:
        raise TinySRError(f"{path}: OpenCV {cv2.__version__} has no dnn_superres; install "
                          "opencv-contrib-python-headless<5")
    stem, scale = match[1], int(match[2])
    model = cv2.dnn_superres.DnnSuperResImpl_create()
    model.readModel(str(path))
    model.setModel(OPENCV_ALGORITHMS[stem], scale)
    params, macs = pb_cost(path)
    graph = cv2.dnn.readNetFromTensorflow(str(path))

    def run(lr: np.ndarray) -> np.ndarray:
        return model.upsample(np.ascontiguousarray(lr[..., ::-1]))[..., ::-1]

    def net(grey: np.ndarray):
        graph.setInput(np.ascontiguousarray(grey, dtype=np.float32)[None, None])
        return graph.forward()

    return Peer(f"OpenCV {stem}", scale, f"{OPENCV_SOURCES[stem]} {path.name} (cv2 {cv2.__version__})", params,
                macs, run, net=net)


def pb_cost(path: Path) -> tuple[int, int]:
    """(weights, conv MACs per LR pixel) of a dnn_superres graph: every blob of every layer (conv kernels, biases,
    PReLU slopes) is a weight; every conv of these graphs runs on the LR grid, so its MACs per LR pixel are its
    kernel's size (C_out C_in k^2), before a final depth-to-space."""
    import cv2

    graph = cv2.dnn.readNetFromTensorflow(str(path))
    params = macs = 0
    for name in graph.getLayerNames():
        layer = graph.getLayer(graph.getLayerId(name))
        params += sum(int(np.prod(b.shape)) for b in layer.blobs)
        if layer.type in ("Convolution", "Deconvolution"):
            macs += int(np.prod(layer.blobs[0].shape))
    return params, macs


def tinysr_peers(scale: int, names: list[str] | None = None) -> list[Peer]:
    """Every bundled net of `scale` (or those of `names`), run as `tinysr eval --model NAME` runs it."""
    rows = []
    for name in names or bundled_names():
        path = pretrained_path(name)
        model = load_model(path)[0].eval()  # the deployed (folded) net the file holds
        if model.config.scale != scale:
            continue
        upscaler = resolve_upscaler(name, scale=None)[0]
        rows.append(Peer(name, scale, f"tinysr bundled ({path.name})", count_params(model),
                         conv_macs_per_lr_pixel(model), upscaler, net=torch_luma(model)))
    return rows


def torch_luma(model: nn.Module) -> Callable[[np.ndarray], object]:
    """A tinysr net's luma path in torch (its convs and bicubic anchor: `forward_luma`), for `net` ms; an RGB net
    (no luma path) runs whole, on the grey replicated to RGB."""
    forward = getattr(model, "forward_luma", model.forward)

    def run(grey: np.ndarray):
        lr = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32) * 255.0)[None, None].expand(1, 3, -1, -1)
        with torch.no_grad():
            return forward(lr)

    return run


def bicubic_peer(scale: int) -> Peer:
    return Peer("bicubic", scale, "tinysr.resize (MATLAB imresize)", 0, 0, bicubic_upscaler(scale))


# ---------------------------------------------------------------- step 4: measure on one LR, time on one core

def write_lr(images: list[tuple[str, np.ndarray]], *, scale: int, degradation: str, folder: Path) -> Path:
    """The LR of every image under `degradation` (tinysr.data.degrade, seed 0, as `tinysr eval`), as PNGs."""
    folder.mkdir(parents=True)
    for name, hr in images:
        Image.fromarray(degrade(mod_crop(hr, scale), scale, degradation, image_id=name)).save(folder / f"{name}.png")
    return folder


def measure(peers: list[Peer], images: list[tuple[str, np.ndarray]], *, scale: int, column: str, dataset: str,
            degradation: str, tmp: Path) -> None:
    """Each peer's mean PSNR-Y on `images` from one set of LR files, into peer.psnr[column]."""
    lr_dir = write_lr(images, scale=scale, degradation=degradation, folder=tmp / f"{dataset}-x{scale}-{column}")
    for peer in peers:
        report = evaluate(peer.upscale, images, scale=scale, protocol=PROTOCOL, dataset=dataset, model=peer.name,
                          lr_data=lr_dir)
        peer.psnr[column] = report.mean["psnr"]
        print(f"  x{scale} {column:<16} {peer.name:<24} {peer.psnr[column]:.3f}", flush=True)


def timing_lr(image: np.ndarray, scale: int) -> np.ndarray:
    """An LR of (720 / scale) x (1280 // scale) pixels: `image` repeated (np.tile) and cut to that size."""
    h, w = OUT_H // scale, OUT_W // scale
    reps = (-(-h // image.shape[0]), -(-w // image.shape[1]), 1)
    return np.ascontiguousarray(np.tile(image, reps)[:h, :w])


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: compiled kernels, caches
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(1000.0 * (time.perf_counter() - start))
    return min(runs)


def time_peers(peers: list[Peer], lr: np.ndarray, *, repeats: int) -> None:
    """peer.ms['e2e'] and ['net'] on one core: the process pinned to one CPU, torch and OpenCV on one thread."""
    grey = (rgb_to_ycbcr(lr)[..., 0] - 16.0) / 219.0
    affinity, threads = os.sched_getaffinity(0), torch.get_num_threads()
    os.sched_setaffinity(0, {min(affinity)})
    torch.set_num_threads(1)
    try:
        for peer in peers:
            peer.ms["e2e"] = best_ms(lambda p=peer: p.upscale(lr), repeats)
            if peer.net is not None:
                peer.ms["net"] = best_ms(lambda p=peer: p.net(grey), repeats)
    finally:
        os.sched_setaffinity(0, affinity)
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- step 5: report (table, JSON, plot)

def columns(sets: list[str], jpeg_sets: list[str], qualities: list[int]) -> list[str]:
    """Table columns in order: each set on clean LR, then each JPEG set at each quality ('BSD100 q30')."""
    return [*sets, *(f"{s} q{q}" for s in jpeg_sets for q in qualities)]


def markdown(peers: list[Peer], *, scale: int, cols: list[str]) -> str:
    """One scale's table, rows by parameters (bicubic first), PSNR-Y in dB."""
    head = ["model", "params", "MMACs/720p", "ms e2e", "ms net", *cols, "from"]
    lines = [f"x{scale}, {PROTOCOL.describe(scale)}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in sorted(peers, key=lambda p: (p.params, p.name)):
        ms = [f"{p.ms[k]:.0f}" if k in p.ms else "–" for k in ("e2e", "net")]
        psnr = [f"{p.psnr[c]:.2f}" if c in p.psnr else "–" for c in cols]
        lines.append("| " + " | ".join([p.name, f"{p.params:,}", f"{p.macs_720p / 1e6:.0f}", *ms, *psnr, p.source])
                     + " |")
    return "\n".join(lines)


def to_json(peers: list[Peer]) -> list[dict]:
    return [{"name": p.name, "scale": p.scale, "source": p.source, "params": p.params, "macs_720p": p.macs_720p,
             "ms": p.ms, "psnr": p.psnr} for p in peers]


def from_json(paths: list[Path]) -> tuple[list[Peer], list[str]]:
    """The rows of --json files (to redraw the tables and the plot without measuring), merged by (scale, name): a
    later file's PSNR and ms entries replace an earlier one's. Columns: the clean sets, then the JPEG ones."""
    peers: dict[tuple[int, str], Peer] = {}
    for path in paths:
        try:
            rows = json.loads(path.read_text())["rows"]
        except (OSError, ValueError, KeyError) as err:
            raise TinySRError(f"{path}: not a peers.py --json file ({err})") from None
        for r in rows:
            peer = peers.setdefault((r["scale"], r["name"]), Peer(
                r["name"], r["scale"], r["source"], r["params"], r["macs_720p"] * r["scale"] ** 2 // (OUT_H * OUT_W),
                None))
            peer.psnr.update(r["psnr"])
            peer.ms.update(r["ms"])
    cols = list(dict.fromkeys(c for p in peers.values() for c in p.psnr))
    return list(peers.values()), sorted(cols, key=lambda c: " q" in c)


def family(peer: Peer) -> str:
    if peer.source.startswith("tinysr bundled"):
        return "tinysr"
    return "bicubic" if peer.name == "bicubic" else "OpenCV" if peer.name.startswith("OpenCV") else "edge-SR"


STYLE = {"tinysr": ("tab:red", "o"), "edge-SR": ("tab:blue", "s"), "OpenCV": ("tab:green", "^")}


def plot(peers: list[Peer], path: Path, *, column: str) -> None:
    """PSNR on `column` against MMACs per 720p output, one panel per scale; bicubic as a dashed line. On a clean
    column, tinysr's JPEG nets (made for compressed input; they are in the table) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    scales = sorted({p.scale for p in peers})
    fig, axes = plt.subplots(1, len(scales), figsize=(3.6 * len(scales), 3.2), squeeze=False)
    for ax, scale in zip(axes[0], scales):
        rows = [p for p in peers if p.scale == scale and column in p.psnr
                and not (family(p) == "tinysr" and "-jpeg" in p.name and " q" not in column)]
        for p in rows:
            if family(p) == "bicubic":
                ax.axhline(p.psnr[column], color="grey", ls="--", lw=0.8, label="bicubic")
                continue
            colour, marker = STYLE[family(p)]
            ax.scatter(p.macs_720p / 1e6, p.psnr[column], c=colour, marker=marker, s=18, label=family(p))
            ax.annotate(p.name.replace("OpenCV ", "cv "), (p.macs_720p / 1e6, p.psnr[column]), fontsize=5,
                        xytext=(2, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # no 2x10^2 ... labels between the decades
        ax.set_title(f"x{scale}", fontsize=9)
        ax.set_xlabel("MMACs per 720p output", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0][0].set_ylabel(f"PSNR-Y {column} (dB)", fontsize=8)
    handles = {label: h for ax in axes[0] for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------- the run

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--esr", type=Path, help="a checkout of github.com/pnavarre/eSR (models.py, model-files/)")
    parser.add_argument("--opencv-pb", type=Path, nargs="+", default=[],
                        help="dnn_superres .pb files (FSRCNN_xS.pb, FSRCNN-small_xS.pb, ESPCN_xS.pb)")
    parser.add_argument("--no-tinysr", action="store_true", help="leave out tinysr's bundled nets")
    parser.add_argument("--tinysr", nargs="+", metavar="NAME", help="only these bundled nets (default: every one; "
                        "a later run of new nets merges with an earlier run's file through --from-json)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TINYSR_DATA", "../shared/data")))
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100", "Urban100"])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], choices=[2, 3, 4])
    parser.add_argument("--jpeg", type=int, nargs="*", default=[30, 50, 75, 90], help="JPEG qualities of the LR")
    parser.add_argument("--jpeg-sets", nargs="*", default=["BSD100"], help="the sets measured on JPEG LR")
    parser.add_argument("--limit", type=int, help="the first N images of each set (a quick check)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model (the fastest is kept)")
    parser.add_argument("--time-only", action="store_true", help="measure no PSNR, only the ms columns")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--plot", type=Path, help="write the PSNR vs MACs plot here (PNG)")
    parser.add_argument("--plot-set", default="BSD100", help="the column the plot shows (default BSD100)")
    parser.add_argument("--from-json", type=Path, nargs="+", help="measure nothing: print the tables and draw the "
                        "plot of --json files of earlier runs (a later file's PSNR and ms replace an earlier one's)")
    return parser


def load_sets(data: Path, names: list[str], limit: int | None) -> dict[str, list[tuple[str, np.ndarray]]]:
    sets = {}
    for name in names:
        if not (data / name).is_dir():
            raise TinySRError(f"{data / name}: no such test set folder (--data, --sets)")
        sets[name] = [(p.stem, read_image(p)[0]) for p in image_folder(data / name).hr_paths[:limit]]
    return sets


def peers_of_scale(scale: int, args: argparse.Namespace, models_py) -> list[Peer]:
    rows = [bicubic_peer(scale)] + ([] if args.no_tinysr else tinysr_peers(scale, args.tinysr))
    if models_py is not None:
        rows += [esr_peer(models_py, args.esr, model_id) for model_id in ESR_MODELS[scale]]
    return rows + [p for p in map(opencv_peer, args.opencv_pb) if p.scale == scale]


def run(args: argparse.Namespace) -> list[Peer]:
    torch.set_num_threads(1)
    if args.opencv_pb:
        import cv2

        cv2.setNumThreads(1)
    unknown = sorted(set(args.tinysr or ()) - set(bundled_names()))
    if unknown:
        raise TinySRError(f"--tinysr {' '.join(unknown)}: not a bundled model (tinysr models lists them)")
    models_py = esr_module(args.esr) if args.esr is not None else None
    peers = {scale: peers_of_scale(scale, args, models_py) for scale in args.scales}  # every path checked first
    missing = [s for s in args.jpeg_sets if s not in args.sets]
    if missing:
        raise TinySRError(f"--jpeg-sets {' '.join(missing)}: not among --sets")
    sets = load_sets(args.data, args.sets, args.limit)
    cols = [] if args.time_only else columns(args.sets, args.jpeg_sets if args.jpeg else [], args.jpeg)
    if args.plot is not None and args.plot_set not in cols:
        raise TinySRError(f"--plot-set {args.plot_set}: not a column of this run ({', '.join(cols)})")
    print(f"# python {' '.join(sys.argv)}\n# {platform.node()}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for scale, rows in peers.items():
            for name, images in ({} if args.time_only else sets).items():
                measure(rows, images, scale=scale, column=name, dataset=name, degradation="bicubic", tmp=Path(tmp))
                for q in args.jpeg if name in args.jpeg_sets else []:
                    measure(rows, images, scale=scale, column=f"{name} q{q}", dataset=name,
                            degradation=f"bicubic+jpeg{q}", tmp=Path(tmp))
            time_peers(rows, timing_lr(next(iter(sets.values()))[0][1], scale), repeats=args.repeats)
    flat = [p for rows in peers.values() for p in rows]
    print("\n\n".join(markdown(rows, scale=scale, cols=cols) for scale, rows in peers.items()))
    if args.json is not None:
        args.json.write_text(json.dumps({"command": sys.argv, "protocol": PROTOCOL.name, "rows": to_json(flat)},
                                        indent=1))
    if args.plot is not None:
        plot(flat, args.plot, column=args.plot_set)
    return flat


def redraw(args: argparse.Namespace) -> None:
    peers, cols = from_json(args.from_json)
    scales = sorted({p.scale for p in peers})
    print("\n\n".join(markdown([p for p in peers if p.scale == s], scale=s, cols=cols) for s in scales))
    if args.plot is not None:
        plot(peers, args.plot, column=args.plot_set)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        redraw(args) if args.from_json is not None else run(args)
    except TinySRError as err:
        print(f"peers.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
