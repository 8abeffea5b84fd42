"""Compact nets (Real-ESRGAN's SRVGGNetCompact) in tinysr and through spandrel on torch, beside Pillow (issue 27).

    python benchmarks/compact.py [--model M ...] [--repeats 5] [--threads 1 2] [--image PATH] [--json OUT]

What runs, on one LR photo of 1280x720 at each model's scale (uint8 HWC RGB in, uint8 HWC RGB out):
* tinysr: `tinysr.upscale(lr, model)` with default options, the engine it picks (`choose_engine`) named in each row:
  once with torch installed (tinysr's full install) and once with torch hidden from the process (the core install,
  `pip install tinysr`: `sys.modules["torch"] = None`, so `find_spec("torch")` is None, as there). Where
  `tinysr.infer.upscale.upscale` takes an `engine` option, each of its `ENGINES` that applies is timed too; else the
  engines its `fused` option reaches (True, False).
* spandrel 0.4.2 on torch (CPU), as chaiNNer and ComfyUI call it: `ModelLoader().load_from_file(file)`, then
  `descriptor(tensor)` (which runs under its own `torch.inference_mode`) on NCHW float32 RGB 0..1; the row
  "spandrel" is uint8 to uint8 (the conversions an app does around the call, rounded half to even), "spandrel call"
  the descriptor call alone.
  spandrel cannot import beside tinysr's CPU torch (tests/test_spandrel.py), so it runs in its own venv
  (`tools/spandrel_venv.sh`; its python with PYTHONPATH=""), from the script `SPANDREL_WORKER`.
* Pillow: `Image.resize(size, Image.BICUBIC)` of the same LR (the PIL image made once; Pillow's resize is one
  thread), the in-run baseline: every row's "x Pillow" is its median over Pillow's.

Both sides load one file: each model exported once per run with `tinysr export --format spandrel` to a temporary
.safetensors, which is also a tinysr weights file (a snapshot too, for a run still writing its best.safetensors).

Threads: every path runs in a worker process pinned to the first T cores this process may use (`--threads`), with
OMP/OpenBLAS/MKL/Numba thread counts set to T; spandrel's worker also calls `torch.set_num_threads(T)`, tinysr's runs
with its defaults (its thread pools follow the cores a process may use, `tinysr.cpu.cores`). Each worker times its own
call (`time.perf_counter`), so process hops are not counted. Each path runs once to warm up (Numba compiles, torch
plans), then `--repeats` times, interleaved repeat by repeat with every other path (a busy spell of a shared machine
moves them all); the median is reported. Outputs must agree: each tinysr engine's against spandrel's, within 1 grey
level on at most 0.1 % of the values (tinysr's parity rule); the exit status is 1 where one does not.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LR_SIZE = (1280, 720)  # (width, height) of the LR photo
DEFAULT_RUNS = ("runs/compact-5k-x2/best.safetensors", "runs/compact-5k-x4/best.safetensors")
MAX_LEVELS, MAX_FRACTION = 1, 1e-3  # tinysr's parity rule (tests/test_spandrel.py `within_parity`)


class BenchError(Exception):
    """A one-line reason the benchmark cannot run."""


# ---------------------------------------------------------------- the workers (each runs in its own process)

#: spandrel's side, run by the spandrel venv's python with `-c` (it imports no tinysr). argv[1]: the thread count.
#: Requests, one JSON line each: {"load": file, "image": lr.npy} -> the descriptor's facts; {"warm": out.npy or null}
#: -> one run, its output saved; {"time": true} -> seconds of one run, uint8 to uint8 and of the call alone.
SPANDREL_WORKER = r"""
import json, sys, time
import numpy as np, spandrel, torch
from spandrel import ModelLoader

reply, sys.stdout = sys.stdout, sys.stderr
send = lambda obj: (reply.write(json.dumps(obj) + "\n"), reply.flush())
torch.set_num_threads(int(sys.argv[1]))
send({"python": sys.version.split()[0], "torch": torch.__version__, "spandrel": spandrel.__version__,
      "torch_threads": torch.get_num_threads()})
desc = image = None

def upscale():
    start = time.perf_counter()
    lr = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0)
    call = time.perf_counter()
    sr = desc(lr)  # under torch.inference_mode (spandrel's own decorator); its output is an inference tensor
    call = time.perf_counter() - call
    sr = sr[0].permute(1, 2, 0).mul(255.0).round().to(torch.uint8).contiguous().numpy()
    return sr, time.perf_counter() - start, call

for line in sys.stdin:
    req = json.loads(line)
    if "load" in req:
        desc, image = ModelLoader().load_from_file(req["load"]).eval(), np.load(req["image"])
        send({"architecture": desc.architecture.id, "scale": desc.scale,
              "params": sum(p.numel() for p in desc.model.parameters())})
    elif "warm" in req:
        sr, _, _ = upscale()
        if req["warm"]:
            np.save(req["warm"], sr)
        send({"shape": list(sr.shape), "torch_threads": torch.get_num_threads()})
    else:
        _, total, call = upscale()
        send({"spandrel": total, "spandrel call": call})
"""


def tinysr_worker(*, without_torch: bool) -> int:
    """tinysr's side (`--worker tinysr` / `tinysr-core`): as `SPANDREL_WORKER`, one entry per engine it runs."""
    if without_torch:
        sys.modules["torch"] = None  # the core install: find_spec("torch") is None and `import torch` fails
    import numpy as np

    import tinysr
    from tinysr.errors import TinySRError

    reply, sys.stdout = sys.stdout, sys.stderr

    def send(obj: dict) -> None:
        reply.write(json.dumps(obj) + "\n")
        reply.flush()

    send({"tinysr": tinysr.__version__, "numpy": np.__version__, "numba": _version("numba"),
          "torch": None if without_torch else _version("torch")})
    model = image = None
    calls: dict[str, dict] = {}
    for line in sys.stdin:
        req = json.loads(line)
        if "load" in req:
            model, image = tinysr.load_model(req["load"]), np.load(req["image"])
            default, calls = engine_options(model)
            send({"params": model.n_params, "scale": model.scale, "default": default, "engines": list(calls)})
        elif "warm" in req:
            try:
                sr = tinysr.upscale(image, model, **calls[req["engine"]])
            except TinySRError as exc:
                send({"error": str(exc)})
                continue
            if req["warm"]:
                np.save(req["warm"], sr)
            torch = sys.modules.get("torch") if req["engine"] == "torch" else None
            send({"shape": list(sr.shape), "torch_threads": torch.get_num_threads() if torch else None})
        else:
            start = time.perf_counter()
            tinysr.upscale(image, model, **calls[req["engine"]])
            send({req["engine"]: time.perf_counter() - start})
    return 0


def engine_options(model) -> tuple[str, dict[str, dict]]:
    """The engine `tinysr.upscale` picks for `model` by default, and {engine: upscale's keyword options} for each one
    that can be asked for (default first): by `engine=` where the engine takes it, else by `fused=`."""
    from tinysr.errors import TinySRError
    from tinysr.infer import upscale as engine

    def chosen(fused: bool | None) -> str:
        return engine.choose_engine(model, self_ensemble=False, device="cpu", rgb=True, fused=fused)

    default = chosen(None)
    options = {default: {}}
    if "engine" in inspect.signature(engine.upscale).parameters:
        for name in engine.ENGINES:
            options.setdefault(name, {"engine": name})  # one that does not apply fails at its warm-up
        return default, options
    for fused in (True, False):
        try:
            options.setdefault(chosen(fused), {"fused": fused})
        except TinySRError:  # fused=True on a net the compiled kernels do not run
            pass
    return default, options


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


class Worker:
    """A worker process pinned to `cpus`, spoken to in JSON lines; its stderr goes to `log`."""

    def __init__(self, label: str, argv: list[str], *, cpus: list[int], env: dict[str, str], log: Path):
        self.label, self.log = label, log
        threads = {k: str(len(cpus)) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "NUMBA_NUM_THREADS")}
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"),
                                        text=True, env={**env, **threads},
                                        preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self.hello = self._read()

    def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            lines = self.log.read_text(errors="replace").strip().splitlines() or ["no message"]
            raise BenchError(f"the {self.label} worker stopped: {lines[-1]}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ---------------------------------------------------------------- the run

def cpu_name() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())


def source_state() -> str:
    """The checkout's commit, and whether src/ differs from it (what the tinysr rows ran)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout
    return f"commit {head or 'unknown'}" + (" with uncommitted changes in src/" if dirty.strip() else "")


def default_models(notes: list[str]) -> list[str]:
    """The bundled compact nets, else the compact runs' weights that exist (a missing one is a note)."""
    from tinysr.pretrained import list_pretrained

    bundled = [name for name in list_pretrained() if name.startswith("compact-")]
    if bundled:
        return bundled
    found = [path for path in DEFAULT_RUNS if (REPO / path).is_file()]
    notes += [f"{path}: not there (yet), skipped" for path in DEFAULT_RUNS if path not in found]
    return found


def lr_photo(path: Path):
    """1280x720 RGB uint8: the photo's centre crop at 16:9, resized by Pillow's LANCZOS."""
    import numpy as np
    from PIL import Image

    try:
        im = Image.open(path).convert("RGB")
    except OSError as exc:
        raise BenchError(f"--image {path}: cannot read it ({exc})") from None
    w, h = LR_SIZE
    cw, ch = min(im.width, im.height * w // h), min(im.height, im.width * h // w)
    left, top = (im.width - cw) // 2, (im.height - ch) // 2
    return np.asarray(im.crop((left, top, left + cw, top + ch)).resize(LR_SIZE, Image.LANCZOS))


def export(spec: str, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tinysr", "export", "--model", spec, "--format", "spandrel",
                           str(out)], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise BenchError(f"--model {spec}: {(done.stderr.strip().splitlines() or ['export failed'])[-1]}")


def spandrel_python() -> str:
    check = subprocess.run([str(REPO / "tools" / "spandrel_venv.sh"), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(check.stderr.strip() or "tools/spandrel_venv.sh --check failed")
    return str(Path(check.stdout.strip()) / "bin" / "python")


def start_workers(threads: list[int], folder: Path) -> dict[tuple[str, int], Worker]:
    """For each thread count: tinysr (torch installed), tinysr-core (torch hidden) and spandrel."""
    cpus, python, script = sorted(os.sched_getaffinity(0)), spandrel_python(), str(Path(__file__).resolve())
    workers = {}
    try:
        for t in threads:
            argvs = {"tinysr": [sys.executable, script, "--worker", "tinysr"],
                     "tinysr-core": [sys.executable, script, "--worker", "tinysr-core"],
                     "spandrel": [python, "-c", SPANDREL_WORKER, str(t)]}
            for kind, argv in argvs.items():
                env = {**os.environ, "PYTHONPATH": ""} if kind == "spandrel" else dict(os.environ)
                workers[kind, t] = Worker(f"{kind} ({t} threads)", argv, cpus=cpus[:t], env=env,
                                          log=folder / f"{kind}-{t}.log")
    except BaseException:
        stop(workers)
        raise
    return workers


def stop(workers: dict[tuple[str, int], Worker]) -> None:
    for w in workers.values():
        if w.process.poll() is None:
            w.process.kill()
            w.process.wait()


def plan_paths(workers: dict[tuple[str, int], Worker], t: int, file: Path, image: Path) -> tuple[dict, list]:
    """Load the model in the workers of `t` threads: their replies by kind, and the paths to time as
    [(worker kind, name, label)]: spandrel's two, then each tinysr engine once (torch installed first)."""
    loaded = {kind: w.ask(load=str(file), image=str(image)) for (kind, n), w in workers.items() if n == t}
    paths = [("spandrel", "spandrel", "spandrel"), ("spandrel", "spandrel call", "spandrel call")]
    defaults = {loaded["tinysr"]["default"]: "default", loaded["tinysr-core"]["default"]: "default, core install"}
    if loaded["tinysr"]["default"] == loaded["tinysr-core"]["default"]:
        defaults[loaded["tinysr"]["default"]] = "default, with or without torch"
    for kind in ("tinysr", "tinysr-core"):
        for engine in loaded[kind]["engines"]:
            if engine not in [name for _, name, _ in paths]:
                tag = f" ({defaults[engine]})" if engine in defaults else ""
                paths.append((kind, engine, f"tinysr {engine}{tag}"))
    return loaded, paths


def parity(ours, theirs) -> dict:
    import numpy as np

    if ours.shape != theirs.shape:
        return {"shape": [list(ours.shape), list(theirs.shape)], "ok": False}
    diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    off = float((diff > 0).mean())
    return {"max": int(diff.max()), "fraction_off": off, "ok": int(diff.max()) <= MAX_LEVELS and off <= MAX_FRACTION}


def warm_up(spec: str, file: Path, workers, threads: list[int], notes: list[str]) -> tuple[dict, dict, dict]:
    """Load the model in every worker and run each path once: {threads: (load replies, paths)}, the outputs of the
    first thread count by label, and {threads: {label: torch threads}} as the workers report them."""
    import numpy as np

    plans, outputs, torch_threads = {}, {}, {}
    for t in threads:
        loaded, paths = plan_paths(workers, t, file, file.parent / "lr.npy")
        for kind, engine, label in [p for p in paths if p[1] != "spandrel call"]:  # that one runs with "spandrel"
            out = file.parent / f"{engine}.npy" if t == threads[0] else None
            done = workers[kind, t].ask(warm=str(out) if out else None, engine=engine)
            if "error" in done:
                paths = [p for p in paths if p[1] != engine]
                if out:
                    notes.append(f"{spec}: tinysr engine {engine} does not apply ({done['error']})")
                continue
            if done["torch_threads"] is not None:  # spandrel, and tinysr's torch engine
                torch_threads.setdefault(t, {})[label] = done["torch_threads"]
            if out:
                outputs[label] = np.load(out)
        plans[t] = (loaded, paths)
    return plans, outputs, torch_threads


def time_paths(plans: dict, workers, lr, scale: int, repeats: int) -> dict:
    """Median ms of each path, "Pillow" and (threads, name), every path run once per repeat."""
    from PIL import Image

    pil, size = Image.fromarray(lr), (lr.shape[1] * scale, lr.shape[0] * scale)
    pil.resize(size, Image.BICUBIC)
    times = {"Pillow": []}
    for _ in range(repeats):
        times["Pillow"].append(_timed(lambda: pil.resize(size, Image.BICUBIC)))
        for t, (_, paths) in plans.items():
            for kind, engine, _ in [p for p in paths if p[1] != "spandrel call"]:
                for name, s in workers[kind, t].ask(time=True, engine=engine).items():
                    times.setdefault((t, name), []).append(s)
    return {key: statistics.median(s) * 1e3 for key, s in times.items()}


def bench_model(spec: str, file: Path, workers, threads: list[int], lr, repeats: int, notes: list[str]) -> dict:
    """One model (exported to `file`): 1. load and warm every path; 2. check tinysr's outputs against spandrel's;
    3. time every path; 4. the table's rows (ms, x Pillow, spandrel's ms over tinysr's at the same threads)."""
    plans, outputs, torch_threads = warm_up(spec, file, workers, threads, notes)
    loaded = plans[threads[0]][0]
    if loaded["spandrel"]["architecture"] != "Compact" or loaded["spandrel"]["params"] != loaded["tinysr"]["params"]:
        raise BenchError(f"--model {spec}: spandrel loads it as {loaded['spandrel']}, tinysr as {loaded['tinysr']}")
    reference = outputs.pop("spandrel")
    checks = {label: parity(sr, reference) for label, sr in outputs.items()}
    scale = loaded["tinysr"]["scale"]
    ms = time_paths(plans, workers, lr, scale, repeats)
    rows = [{"threads": None, "path": "Pillow BICUBIC", "ms": ms["Pillow"]}]
    for t, (_, paths) in plans.items():
        rows += [{"threads": t, "path": label, "ms": ms[t, engine]} for _, engine, label in paths]
    for row in rows:
        spandrel = ms.get((row["threads"], "spandrel"))
        row.update(x_pillow=row["ms"] / ms["Pillow"],
                   spandrel_over=spandrel / row["ms"] if spandrel and row["path"].startswith("tinysr") else None)
    return {"model": spec, "params": loaded["tinysr"]["params"], "scale": scale, "lr": list(lr.shape),
            "parity": checks, "torch_threads": torch_threads, "rows": rows}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(models: list[str], *, threads: list[int], repeats: int, image: Path) -> dict:
    import numpy as np

    notes: list[str] = []
    models = models or default_models(notes)
    if not models:
        raise BenchError("no compact model to run: pass --model (bundled names or weights files)")
    lr = lr_photo(image)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tinysr-compact-") as tmp:
        folder = Path(tmp)
        np.save(folder / "lr.npy", lr)
        files = [folder / f"model{i}.safetensors" for i in range(len(models))]
        for spec, file in zip(models, files):
            export(spec, file)
        workers = start_workers(threads, folder)
        try:
            results = [bench_model(spec, file, workers, threads, lr, repeats, notes)
                       for spec, file in zip(models, files)]
        except BaseException:
            stop(workers)
            raise
        for w in workers.values():
            w.close()
    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{cpu_name()}, {os.cpu_count()} cores "
            f"({len(os.sched_getaffinity(0))} usable)", "python": platform.python_version(),
            "load_average": [load_before, os.getloadavg()[0]], "source": source_state(),
            "tinysr": workers["tinysr", threads[0]].hello,
            "spandrel": workers["spandrel", threads[0]].hello, "pillow": _version("pillow"),
            "image": str(image), "repeats": repeats, "threads": threads, "models": results, "notes": notes}


# ---------------------------------------------------------------- the report

def format_report(r: dict) -> str:
    ts, sp = r["tinysr"], r["spandrel"]
    lines = [f"{r['date']}; machine: {r['machine']}; load average {r['load_average'][0]:.1f} at the start, "
             f"{r['load_average'][1]:.1f} at the end",
             f"tinysr {ts['tinysr']} at {r['source']} (Python {r['python']}, NumPy {ts['numpy']}, Numba "
             f"{ts['numba']}, torch {ts['torch']}); spandrel {sp['spandrel']} on torch {sp['torch']} (Python "
             f"{sp['python']}, its own venv); Pillow {r['pillow']}",
             f"LR: {LR_SIZE[0]}x{LR_SIZE[1]} RGB from {r['image']} (centre crop 16:9, LANCZOS); ms per image, median "
             f"of {r['repeats']} after a warm-up; x Pillow: over Pillow BICUBIC's median in this run; "
             "spandrel ÷ this: spandrel's ms over the row's, at the same threads (> 1: tinysr is faster)", "",
             "| model | params | out | threads | path | ms | x Pillow | spandrel ÷ this |",
             "|---|---|---|---|---|---|---|---|"]
    for m in r["models"]:
        h, w = m["lr"][0] * m["scale"], m["lr"][1] * m["scale"]
        for row in m["rows"]:
            over = f"{row['spandrel_over']:.2f}" if row["spandrel_over"] else "–"
            lines.append(f"| {m['model']} | {m['params']:,} | x{m['scale']} {w}x{h} | {row['threads'] or '–'} | "
                         f"{row['path']} | {row['ms']:.0f} | {row['x_pillow']:.1f} | {over} |")
    lines.append("")
    for m in r["models"]:
        seen = "; ".join(f"{t} threads: " + ", ".join(f"{label} {n}" for label, n in by.items())
                         for t, by in m["torch_threads"].items())
        lines.append(f"torch threads seen, {m['model']}: {seen}")
    lines += ["", f"parity with spandrel (first thread count; <= {MAX_LEVELS} grey level on <= {MAX_FRACTION:.1%} "
                  "of values):"]
    for m in r["models"]:
        for label, c in m["parity"].items():
            what = (f"max {c['max']}, {c['fraction_off']:.4%} of values off" if "max" in c
                    else f"shapes {c['shape']}")
            lines.append(f"  {m['model']} {label}: {what}: {'ok' if c['ok'] else 'FAILS'}")
    return "\n".join(lines + [f"note: {n}" for n in r["notes"]])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=[], help="bundled names or weights files (default: the "
                        f"bundled compact-* nets, else {' and '.join(DEFAULT_RUNS)})")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2 (those <= the cores)")
    data = Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--image", type=Path, default=data / "Urban100" / "img_001.webp")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=("tinysr", "tinysr-core"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return tinysr_worker(without_torch=args.worker == "tinysr-core")
    usable = len(os.sched_getaffinity(0))
    threads = args.threads or [t for t in (1, 2) if t <= usable]
    try:
        if args.repeats < 1 or min(threads) < 1 or max(threads) > usable:
            raise BenchError(f"--repeats must be >= 1 and --threads within 1..{usable} (this process's cores)")
        report = run(args.model, threads=threads, repeats=args.repeats, image=args.image)
    except BenchError as exc:
        print(f"benchmarks/compact.py: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    failed = [f"{m['model']} {label}" for m in report["models"] for label, c in m["parity"].items() if not c["ok"]]
    if failed:
        print(f"benchmarks/compact.py: outputs differ from spandrel's beyond parity: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
