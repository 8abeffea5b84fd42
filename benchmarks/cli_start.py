"""How long the `tinysr` command takes to start: `--help`, `models`, every `VERB --help` and a few one-line errors
(an unknown model, a missing input or folder), and what each imports.

Usage: ``python benchmarks/cli_start.py [--repeats 11]`` (about 30 s). Each command runs as a fresh process
(``sys.executable -m tinysr ...``: the console script's own work, without a shim), interleaved repeat by repeat with
the baseline ``sys.executable -c pass`` (the interpreter's own start) so that both see the same load on a shared
machine, with bytecode cached as for an installed package (`child_env`). Prints the machine, then the median wall
time of each command, its ratio to the baseline and its difference from it against the goal of the help commands
(at most 60 ms more than ``python -c pass``, issue 24), the median CPU time (user + system, which load inflates far
less than wall time) and its difference from the baseline's, and, from ``python -X importtime``, whether torch,
numpy, Numba or Pillow was imported and the slowest tinysr imports.
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

from tinysr.cli import VERBS

#: The goal: `--help`, `models` and `VERB --help` start at most this much later than the bare interpreter.
GOAL_EXTRA_S = 0.060
HEAVY = {"torch", "numpy", "numba", "PIL", "matplotlib", "onnx"}
#: One-line errors that must come before any heavy import (run in an empty folder holding one image name).
ERRORS = [["upscale", "--model", "nosuchmodel", "x.png", "-o", "out"], ["upscale", "nosuch.png", "-o", "out"],
          ["eval", "--model", "nosuch", "--data", "."], ["eval", "--model", "bicubic", "--data", "nosuch"],
          ["export", "--model", "nosuch", "out.onnx", "--format", "onnx"], ["upscale", "--tile", "-1", "x", "-o", "y"]]


def helps() -> list[list[str]]:
    """The commands that the goal is for."""
    return [["--help"], ["models"], *([verb, "--help"] for verb in VERBS)]


def commands() -> list[list[str]]:
    return [*helps(), *ERRORS]


def child_env(cache: str) -> dict[str, str]:
    """The environment of every run: bytecode cached (in `cache`, outside the source tree), as for an installed
    package, even where PYTHONDONTWRITEBYTECODE is set (it would recompile every tinysr module on every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": cache}


def wall(argv: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of `argv`. The CPU time barely depends on the load of a
    shared machine, where the wall time may grow several-fold."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=cwd,
                   env=child_env(os.path.join(cwd, ".pycache")))
    elapsed, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imported(argv: list[str], cwd: str) -> tuple[set[str], list[tuple[int, str]]]:
    """(top-level packages imported, [(cumulative us, module)] of the 3 slowest tinysr imports) of one run."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tinysr", *argv], capture_output=True,
                            text=True, check=False, cwd=cwd, env=child_env(os.path.join(cwd, ".pycache")))
    packages, tinysr = set(), []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        packages.add(name.split(".")[0])
        if name.startswith("tinysr"):
            tinysr.append((int(cumulative), name))
    return packages, sorted(tinysr, reverse=True)[:3]


def measure(repeats: int, cwd: str) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each command and of the baseline, interleaved: one round of all of them per repeat."""
    base = [sys.executable, "-c", "pass"]
    times: dict[str, list[tuple[float, float]]] = {"python -c pass": []}
    for argv in commands():  # warm-up: compile the bytecode once
        wall([sys.executable, "-m", "tinysr", *argv], cwd)
    for _ in range(repeats):
        times["python -c pass"].append(wall(base, cwd))
        for argv in commands():
            times.setdefault("tinysr " + " ".join(argv), []).append(wall([sys.executable, "-m", "tinysr", *argv], cwd))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()} ({sys.executable}), load {os.getloadavg()[0]:.2f}; median of "
          f"{args.repeats} interleaved runs, bytecode cached")
    with tempfile.TemporaryDirectory() as cwd:
        times = measure(args.repeats, cwd)
        baseline, base_cpu = (statistics.median(s) for s in zip(*times["python -c pass"]))
        print(f"{'command':<56} {'wall s':>7} {'x python':>8} {'+ms':>5} {'goal':>4} {'cpu s':>6} {'+cpu ms':>7}")
        for name, samples in times.items():
            median, cpu = (statistics.median(s) for s in zip(*samples))
            extra = median - baseline
            goal = name in {"tinysr " + " ".join(argv) for argv in helps()}
            verdict = "" if not goal else ("ok" if extra <= GOAL_EXTRA_S else "SLOW")
            print(f"{name:<56} {median:>7.3f} {median / baseline:>8.2f} {extra * 1000:>5.0f} {verdict:>4} {cpu:>6.3f} "
                  f"{(cpu - base_cpu) * 1000:>7.0f}")
        for argv in commands():
            packages, slowest = imported(argv, cwd)
            heavy = sorted(packages & HEAVY)
            print(f"tinysr {' '.join(argv):<49} imports: {', '.join(heavy) or 'none of ' + '/'.join(sorted(HEAVY))}"
                  "; slowest tinysr: " + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in slowest))
    print(f"goal: at most {GOAL_EXTRA_S * 1000:.0f} ms more than python -c pass ({baseline * 1000:.0f} ms here); "
          f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
