"""Benchmark: PatchSampler batches vs one training step of the 963-parameter EDSR, on the cached 291-image set.

    python benchmarks/sampler.py                 # T91+BSD200 (x2, bicubic) and Urban100 as a DIV2K-sized stand-in
    python benchmarks/sampler.py --cold          # also time the cold cache build (in a fresh temp cache dir)

Prints the load times, seconds per batch of the sampler (B=16, LR patch 48, x2, augmentation on) and of one
training step (forward + L1 + backward + Adam) on the same batch, their ratio (< 1: the sampler is not the
bottleneck), and the machine. Results go to benchmarks/RESULTS.md, section "## sampler".
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tinysr.data.cache import concat, load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.sampler import PatchSampler
from tinysr.models import count_params, create_model

REPO = Path(__file__).resolve().parents[1]
SCALE, PATCH, BATCH = 2, 48, 16


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"numpy {np.__version__}, Python {platform.python_version()}")


def timed_load(image_set, cache_dir):
    start = time.perf_counter()
    pairs = load_pairs(image_set, scale=SCALE, degradation="bicubic", cache_dir=cache_dir, progress=False)
    return pairs, time.perf_counter() - start


def seconds_per_batch(sampler: PatchSampler, n: int) -> float:
    for _ in range(5):
        sampler.next_batch()
    start = time.perf_counter()
    for _ in range(n):
        sampler.next_batch()
    return (time.perf_counter() - start) / n


def seconds_per_step(lr: torch.Tensor, hr: torch.Tensor, n: int, device: str) -> tuple[float, int]:
    torch.manual_seed(0)
    model = create_model("edsr", n_blocks=0, n_feats=4, scale=SCALE).to(device)
    lr, hr = lr.to(device), hr.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - start) / n, count_params(model)


def report(label: str, pairs, n_batches: int, n_steps: int, device: str) -> None:
    sampler = PatchSampler(pairs, scale=SCALE, patch=PATCH, batch_size=BATCH, augment=True,
                           generator=np.random.default_rng(0))
    t_batch = seconds_per_batch(sampler, n_batches)
    t_step, n_params = seconds_per_step(*sampler.next_batch(), n_steps, device)
    print(f"{label}: {len(sampler)} images; sampler {t_batch * 1e3:.3f} ms/batch ({BATCH / t_batch:,.0f} crops/s); "
          f"train step ({n_params}-param EDSR, {device}) {t_step * 1e3:.3f} ms/batch; "
          f"ratio sampler/step {t_batch / t_step:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / os.environ.get("TINYSR_DATA", "../shared/data"))
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $TINYSR_CACHE or ~/.cache/tinysr")
    parser.add_argument("--cold", action="store_true", help="build the caches in a fresh temp dir to time them")
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="where the training step runs (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine())
    print(f"x{SCALE}, LR patch {PATCH}, batch {BATCH}, augmentation on, degradation bicubic")
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp) if args.cold else args.cache_dir
        train = concat(image_folder(args.data / "T91"), image_folder(args.data / "BSD200"), name="T91+BSD200")
        urban = image_folder(args.data / "Urban100")
        for label, image_set in (("T91+BSD200", train), ("Urban100", urban)):
            pairs, first = timed_load(image_set, cache_dir)
            pairs, second = timed_load(image_set, cache_dir)
            kind = "cold build" if args.cold else "first load (hit if cached before)"
            print(f"{label}: {kind} {first:.2f} s, cached load {second * 1e3:.1f} ms")
            report(label, pairs, args.batches, args.steps, args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
