"""Benchmark: seconds per 1,000 training steps of the study's EDSR sizes, beside the study's V100 figures.

    python benchmarks/train_speed.py --quick --json out.json       # the GPU run (gpu_check.sh), about 4-5 minutes
    python benchmarks/train_speed.py --configs 0/64,16/64 --batches 1 --steps 20 --device cpu   # a CPU look

What is timed: `tinysr.train.cuda.build_step` (what `tinysr train` runs: fwd + L1 + bwd + Adam, no host sync) on
SYNTHETIC batches already on the device (no data loading; one `gpu-sampler` row adds the device-side sampler), x2,
LR patch 48, at each batch size. Variants: `fast` = `FastPath.default_for(device)` (on CUDA: channels-last, bf16
autocast, CUDA graph), `fp32` = eager fp32 (TF32 off, as on a V100), `compile` = fast + torch.compile. A variant
that fails (e.g. torch.compile) is recorded with its error and the run goes on.

FLOPs per step = 3 x forward FLOPs (fwd + bwd), forward FLOPs = 2 x MACs, MACs = sum over convs of
k*k*Cin*Cout*Hout*Wout, counted by hooks on a meta-device forward. MFU is against the device's dense bf16 peak.
Results go to benchmarks/RESULTS.md, section "## train_speed".
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from tinysr.train.cuda import FastPath, build_step, prepare_model
from tinysr.data.gpu_sampler import DevicePatchSampler
from tinysr.models import EDSR, EDSRConfig, count_params

#: The study's V100 seconds per 1,000 steps (x2, LR patch 48), by n_blocks/n_feats.
STUDY_V100 = {"0/64": 6.11, "16/64": 31.93, "64/64": 105.15, "16/256": 150.96, "16/512": 477.09, "32/512": 881.86}
#: Dense bf16 peak FLOP/s by a substring of torch.cuda.get_device_name (first match wins).
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12),
             ("L40S", 362e12), ("A10", 125e12), ("V100", 125e12)]  # V100: fp16 tensor cores (no bf16)
GOALS = [  # (config, batch, what, check) from issue 7, measured on the `fast` variant
    ("16/64", 1, "<= 6.4 s per 1k steps (1/5 of the V100)", lambda r: r["sec_per_1k"] <= 31.93 / 5),
    ("32/512", 1, "<= 44 s per 1k steps (1/20 of the V100)", lambda r: r["sec_per_1k"] <= 881.86 / 20),
    ("16/512", 16, ">= 40 % MFU in bf16", lambda r: (r["mfu"] or 0) >= 0.40),
]


@dataclass(frozen=True)
class Plan:
    """How long to time one (config, batch, variant): warm-up steps, then chunks until steps or seconds run out."""

    warmup: int = 10
    steps: int = 300
    chunk: int = 50
    max_seconds: float = 10.0


def conv_macs(config: EDSRConfig, patch: int) -> tuple[int, int]:
    """(multiply-accumulates of one forward pass on one patch x patch LR image, trainable parameters), counted
    on the meta device: no memory, no compute."""
    with torch.device("meta"):
        model = EDSR(config)
        total = 0

        def count(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
            nonlocal total
            k = module.kernel_size[0] * module.kernel_size[1]
            total += k * module.in_channels // module.groups * module.out_channels * output.shape[2] * output.shape[3]

        for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
            conv.register_forward_hook(count)
        model(torch.empty(1, config.n_colors, patch, patch))
    return total, count_params(model)


def peak_flops(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, next((peak for key, peak in PEAK_BF16 if key in name), None)


def synthetic_batch(batch: int, patch: int, scale: int, device: torch.device):
    g = torch.Generator(device=device).manual_seed(0)
    hr = torch.randint(0, 256, (batch, 3, patch * scale, patch * scale), generator=g, device=device).float()
    return torch.nn.functional.avg_pool2d(hr, scale), hr


def gpu_sampler(batch: int, patch: int, scale: int, device: torch.device) -> DevicePatchSampler:
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (1020, 1356, 3), generator=g, dtype=torch.uint8).numpy() for _ in range(8)]
    return DevicePatchSampler(images, None, scale=scale, patch=patch, batch_size=batch, seed=0, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(config: EDSRConfig, fast: FastPath, *, batch: int, patch: int, device: torch.device, plan: Plan,
               sampler: bool) -> tuple[int, float, float]:
    """(steps timed, seconds, last loss) of the real training step on a fresh model."""
    torch.manual_seed(0)
    model = EDSR(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    step = build_step(prepare_model(model, fast), optimizer, fast=fast)
    source = gpu_sampler(batch, patch, config.scale, device) if sampler else None
    fixed = None if sampler else synthetic_batch(batch, patch, config.scale, device)
    next_batch = source.next_batch if source else (lambda: fixed)
    warm_start = time.perf_counter()
    for i in range(plan.warmup):  # the first call captures the CUDA graph; stop early on heavy configs
        loss = step(*next_batch())
        _sync(device)
        if i >= 2 and time.perf_counter() - warm_start > plan.max_seconds / 2:
            break
    done, chunk, start = 0, 1, time.perf_counter()
    while done < plan.steps and time.perf_counter() - start < plan.max_seconds:
        chunk_start = time.perf_counter()
        for _ in range(min(chunk, plan.steps - done)):
            loss = step(*next_batch())
            done += 1
        _sync(device)  # once per chunk, to watch the clock; the steps themselves never sync
        per_step = (time.perf_counter() - chunk_start) / chunk
        chunk = max(1, min(plan.chunk, int(1.0 / per_step)))  # chunks of about a second
    return done, time.perf_counter() - start, float(loss)


def measure(name: str, batch: int, variant: str, *, device: torch.device, patch: int, scale: int, plan: Plan,
            peak: float | None) -> dict:
    n_blocks, n_feats = (int(v) for v in name.split("/"))
    config = EDSRConfig(n_blocks=n_blocks, n_feats=n_feats, scale=scale)
    fast = FastPath.default_for(device)
    fast = {"fast": fast, "gpu-sampler": fast, "fp32": FastPath(), "compile": replace(fast, compile=True)}[variant]
    macs, params = conv_macs(config, patch)
    flops = 3 * 2 * macs * batch
    row = {"config": name, "batch": batch, "variant": variant, "fast_path": asdict(fast), "params": params,
           "flops_per_step": flops, "v100_sec_per_1k": STUDY_V100.get(name)}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant != "fp32"
    try:
        steps, seconds, loss = time_steps(config, fast, batch=batch, patch=patch, device=device, plan=plan,
                                          sampler=variant == "gpu-sampler")
    except Exception as exc:  # record and go on: an optional feature may be missing on this machine
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        traceback.print_exc(limit=3, file=sys.stderr)
        return row
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    sec_per_step = seconds / steps
    row.update(steps=steps, seconds=round(seconds, 3), sec_per_1k=round(1000 * sec_per_step, 3), last_loss=loss,
               tflops=round(flops / sec_per_step / 1e12, 2),
               mfu=round(flops / sec_per_step / peak, 4) if peak else None)
    if row["v100_sec_per_1k"]:
        row["speedup_vs_v100"] = round(row["v100_sec_per_1k"] / row["sec_per_1k"], 2)
    return row


def quick_runs(configs: list[str], batches: list[int]) -> list[tuple[str, int, str]]:
    """The --quick list, most important first (a spent --budget skips the tail): the goals' rows, every config x
    batch on `fast`, the device sampler, fp32 for the goals' rows, compile, then the other fp32 rows."""
    first = [(c, b) for c, b in (("16/64", 1), ("32/512", 1), ("16/512", 16)) if c in configs and b in batches]
    grid = first + [(c, b) for c in configs for b in batches if (c, b) not in first]
    runs = [(c, b, "fast") for c, b in grid]
    runs += [("16/64", 1, "gpu-sampler"), ("16/64", 16, "gpu-sampler")]
    runs += [(c, b, "fp32") for c, b in first]
    runs += [("16/64", 1, "compile"), ("16/512", 16, "compile")]
    return runs + [(c, b, "fp32") for c, b in grid if (c, b) not in first]


def format_row(r: dict) -> str:
    head = f"{r['config']:>6} b{r['batch']:<3} {r['variant']:<11}"
    if "error" in r:
        return f"{head} {'SKIPPED' if r['error'].startswith('skipped') else 'FAILED'}: {r['error']}"
    v100 = f"{r['v100_sec_per_1k']:8.2f} {r['speedup_vs_v100']:7.2f}x" if r.get("v100_sec_per_1k") else " " * 17
    mfu = f"{100 * r['mfu']:5.1f}%" if r.get("mfu") is not None else "    -"
    return (f"{head} {r['steps']:5d} {r['sec_per_1k']:10.2f} {v100} {r['flops_per_step'] / 1e9:10.1f} "
            f"{r['tflops']:8.2f} {mfu}")


def report_goals(rows: list[dict]) -> list[str]:
    lines = []
    for config, batch, what, check in GOALS:
        row = next((r for r in rows if (r["config"], r["batch"], r["variant"]) == (config, batch, "fast")), None)
        verdict = "not measured" if row is None or "error" in row else ("MET" if check(row) else "MISSED")
        lines.append(f"goal {config} batch {batch} {what}: {verdict}")
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(STUDY_V100), help="n_blocks/n_feats list, e.g. 0/64,16/64")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--variants", default="fast", help="fast, fp32, compile, gpu-sampler (comma list)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--patch", type=int, default=48, help="LR patch side")
    p.add_argument("--steps", type=int, default=300, help="timed steps per measurement (cut by --max-seconds)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=10.0, help="per measurement")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole run; later runs skipped")
    p.add_argument("--quick", action="store_true", help="GPU plan: goals first, <= 300 steps or 6 s each, 240 s budget")
    p.add_argument("--json", help="write all rows and the machine to this file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    configs, batches = args.configs.split(","), [int(b) for b in args.batches.split(",")]
    unknown = [c for c in configs if c.count("/") != 1 or not all(v.isdigit() for v in c.split("/"))]
    if unknown:
        raise SystemExit(f"train_speed: error: --configs {','.join(unknown)}: expected n_blocks/n_feats")
    budget = args.budget if args.budget is not None else (240.0 if args.quick else float("inf"))
    max_seconds = min(args.max_seconds, 6.0) if args.quick else args.max_seconds
    runs = quick_runs(configs, batches) if args.quick else [
        (c, b, v) for v in args.variants.split(",") for c in configs for b in batches]
    plan = Plan(warmup=args.warmup, steps=args.steps, chunk=min(50, args.steps), max_seconds=max_seconds)
    name, peak = peak_flops(device)
    print(f"device: {name}; torch {torch.__version__}; peak bf16 dense "
          f"{f'{peak / 1e12:.0f} TFLOP/s' if peak else 'unknown'}; x{args.scale}, LR patch {args.patch}; "
          "SYNTHETIC batches already on the device (no data loading) unless the variant is gpu-sampler")
    print(f"{'config':>6} {'batch':<4} {'variant':<11} {'steps':>5} {'s/1k steps':>10} {'V100 s/1k':>8} "
          f"{'speed-up':>8} {'GFLOP/step':>10} {'TFLOP/s':>8} {'MFU':>6}")
    rows, goals, start = [], [], time.perf_counter()
    for config, batch, variant in runs:
        if time.perf_counter() - start > budget:
            rows.append({"config": config, "batch": batch, "variant": variant, "error": "skipped: --budget spent"})
        else:
            rows.append(measure(config, batch, variant, device=device, patch=args.patch, scale=args.scale,
                                plan=plan, peak=peak))
        print(format_row(rows[-1]), flush=True)
        goals = report_goals(rows) if device.type == "cuda" else []
        write_json(args.json, rows, goals, device=name, peak=peak, args=args)  # after every row: a kill loses one
    print("\n".join(goals))
    write_json(args.json, rows, goals, device=name, peak=peak, args=args)
    return 0


def write_json(path: str | None, rows: list[dict], goals: list[str], *, device: str, peak: float | None,
               args: argparse.Namespace) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"device": device, "torch": torch.__version__, "peak_bf16": peak, "scale": args.scale,
                       "patch": args.patch, "data": "synthetic on device", "rows": rows, "goals": goals}, f,
                      indent=1)


if __name__ == "__main__":
    raise SystemExit(main())
