"""PSNR cost of int8 (static QDQ) on BSD100 x2 for a quickly trained 963-parameter EDSR (0 blocks x 4 filters).

    python benchmarks/int8_psnr.py [--seconds 60] [--save tiny-x2.safetensors]
    python benchmarks/int8_psnr.py --model tiny-1k-x2      # a bundled model, run folder or weights file (x2)

Until `tinysr train` exists this trains with a plain loop: T91 HR images, MATLAB-bicubic LR (the evaluation's
degradation), random aligned 48x48 LR crops from an explicit generator, L1 loss, Adam 2e-3, batch 16, one thread, for
`--seconds` of wall time. Then BSD100 x2 under the `standard` protocol through torch, ONNX Runtime float32 and
ONNX Runtime int8 (calibrated on T91 LR crops, never on BSD100). The weights are a stand-in; the real number is
rerun with the bundled model.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tinysr.data.io import read_image
from tinysr.evaluate import bicubic_lr, bicubic_upscaler, evaluate, mod_crop
from tinysr.export.onnx import export_onnx, onnx_session, onnx_window_fn
from tinysr.export.quantize import calibration_crops, quantize_onnx
from tinysr.infer.channels import upscale_with
from tinysr.infer.upscale import upscale
from tinysr.metrics import PROTOCOLS
from tinysr.models import create_model

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data")).resolve()
SCALE, PATCH, BATCH = 2, 48, 16


def training_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for path in sorted((DATA / "T91").glob("*.png")):
        hr = mod_crop(read_image(path)[0], SCALE)
        pairs.append((bicubic_lr(hr, SCALE), hr))
    return [(lr, hr) for lr, hr in pairs if min(lr.shape[:2]) >= PATCH]


def sample_batch(pairs, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lrs, hrs = [], []
    for i in rng.integers(0, len(pairs), BATCH):
        lr, hr = pairs[i]
        y, x = rng.integers(0, lr.shape[0] - PATCH + 1), rng.integers(0, lr.shape[1] - PATCH + 1)
        lrs.append(lr[y:y + PATCH, x:x + PATCH])
        hrs.append(hr[y * SCALE:(y + PATCH) * SCALE, x * SCALE:(x + PATCH) * SCALE])
    as_tensor = lambda a: torch.from_numpy(np.stack(a).transpose(0, 3, 1, 2).copy()).float()  # noqa: E731
    return as_tensor(lrs), as_tensor(hrs)


def train(pairs, *, seconds: float) -> torch.nn.Module:
    torch.set_num_threads(1)  # tiny batches: one thread is ~6x faster than two on a shared 2-core machine
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = create_model("edsr-tiny")
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        lr, hr = sample_batch(pairs, rng)
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    print(f"trained {steps} steps in {seconds:.0f} s, last L1 {loss.item():.2f}")
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--save", help="also save the trained weights here")
    parser.add_argument("--model", help="measure this x2 model (as `tinysr upscale --model`) instead of training one")
    args = parser.parse_args()
    pairs = training_pairs()
    if args.model:
        from tinysr.infer.load import load_network

        model = load_network(args.model, scale=SCALE)[0].eval()
    else:
        model = train(pairs, seconds=args.seconds)
    if args.save and not args.model:
        from tinysr.models.weights import save_weights

        save_weights(args.save, model, meta={"trained": f"benchmarks/int8_psnr.py --seconds {args.seconds}"})
    bsd = [(p.stem, read_image(p)[0]) for p in sorted((DATA / "BSD100").glob("*.png"))]
    crops = calibration_crops([lr for lr, _ in pairs[:16]], rng=np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "f.onnx")
        quantize_onnx(Path(tmp) / "f.onnx", Path(tmp) / "q.onnx", crops=crops)
        upscalers = {
            "bicubic": bicubic_upscaler(SCALE),
            "torch float32": lambda lr: upscale(lr, model),
            "onnxruntime float32": lambda lr: upscale_with(onnx_window_fn(onnx_session(Path(tmp) / "f.onnx")), lr,
                                                           scale=SCALE, tile=None, overlap=0),
            "onnxruntime int8": lambda lr: upscale_with(onnx_window_fn(onnx_session(Path(tmp) / "q.onnx")), lr,
                                                        scale=SCALE, tile=None, overlap=0),
        }
        protocol = PROTOCOLS["standard"]
        print(f"# BSD100 x{SCALE}, {protocol.describe(SCALE)}")
        for name, fn in upscalers.items():
            report = evaluate(fn, bsd, scale=SCALE, protocol=protocol, dataset="BSD100", model=name)
            print(f"{name:<22} PSNR {report.mean['psnr']:.3f}  SSIM {report.mean['ssim']:.4f}", flush=True)


if __name__ == "__main__":
    main()
