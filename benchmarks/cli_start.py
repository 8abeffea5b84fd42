"""How long the `tinysr` command takes to start: `--help`, `models` and every `VERB --help`, and whether torch loads.

Usage: ``python benchmarks/cli_start.py [--repeats 7]`` (about 20 s). Each command runs as a fresh process
(`python -m tinysr ...`, the console script's own work), interleaved repeat by repeat with the baseline
``python -c pass`` (the interpreter's own start) so that both see the same load on a shared machine. Prints the
median wall time of each, its ratio to the baseline and to the 0.5 s goal, the machine, and, from
``python -X importtime``, whether torch (or numpy) was imported and the slowest tinysr imports.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from tinysr.cli import VERBS

GOAL_S = 0.5


def commands() -> list[list[str]]:
    return [["--help"], ["models"], *([verb, "--help"] for verb in VERBS)]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def imported(argv: list[str]) -> tuple[set[str], list[tuple[int, str]]]:
    """(top-level packages imported, [(cumulative us, module)] of the 3 slowest tinysr imports) of one run."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tinysr", *argv], capture_output=True,
                            text=True, check=False)
    packages, tinysr = set(), []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        packages.add(name.split(".")[0])
        if name.startswith("tinysr"):
            tinysr.append((int(cumulative), name))
    return packages, sorted(tinysr, reverse=True)[:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    base = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"python -c pass": []}
    for _ in range(args.repeats):
        times["python -c pass"].append(wall(base))
        for argv in commands():
            times.setdefault("tinysr " + " ".join(argv), []).append(wall([sys.executable, "-m", "tinysr", *argv]))
    baseline = statistics.median(times["python -c pass"])
    print(f"{'command':<32} {'median s':>9} {'x python':>9} {'goal':>6}")
    for name, samples in times.items():
        median = statistics.median(samples)
        verdict = "" if name.startswith("python") else ("ok" if median <= GOAL_S else "SLOW")
        print(f"{name:<32} {median:>9.3f} {median / baseline:>9.1f} {verdict:>6}")
    for argv in commands():
        packages, slowest = imported(argv)
        heavy = sorted(packages & {"torch", "numpy", "PIL", "numba", "matplotlib", "onnx"})
        print(f"tinysr {' '.join(argv):<26} imports: {', '.join(heavy) or 'none of torch/numpy/PIL'}; slowest tinysr: "
              + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in slowest))
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
