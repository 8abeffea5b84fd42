"""Kill and resume: training is SIGKILLed at 14 points (mid-step, mid-validation, inside and after every file's
write), then resumed; the result equals the uninterrupted run's bit for bit. A killed cache build is rebuilt.

Each kill is a real SIGKILL of a `tinysr train` subprocess, armed by `TINYSR_TEST_KILL` (`tinysr.faults`): no
handler or `finally` runs. Recovery is what a user would do: `tinysr train --resume RUN` once config.json exists,
else the same command again. Compared with the uninterrupted run: best.safetensors byte for byte, last.pt's weights,
Adam state, RNG and sampler state tensor for tensor, and metrics.jsonl row for row (all but its timings).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysr import faults
from tinysr.cli import main
from tinysr.data.cache import load_pairs
from tinysr.data.folder import image_folder
from tinysr.train import runs
from test_train import folders  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[1]
TIMINGS = ("sec_per_1k_steps", "wall_time")
#: (point, pass): 30 steps, validation (2 images) and checkpoints at steps 10, 20 and 30.
POINTS = [
    ("before-rename:config.json", 1), ("after-rename:config.json", 1),
    ("before-rename:status.json", 1), ("after-rename:status.json", 1),
    ("train:step", 5), ("validate:image", 3),
    ("mid-append:metrics.jsonl", 1), ("before-rename:best.safetensors", 1), ("after-rename:best.safetensors", 1),
    ("before-rename:last.pt", 2), ("after-rename:last.pt", 2),
    ("mid-append:metrics.jsonl", 3), ("before-rename:last.pt", 3),
    ("before-rename:status.json", 5),  # the final status write ("finished")
]


def _argv(folders, run):  # noqa: F811
    return ["train", "--model", "edsr-tiny", "--train-data", str(folders / "train"), "--val-data",
            str(folders / "val"), "--out", str(run), "--steps", "30", "--eval-every", "10", "--patch", "16",
            "--batch-size", "4", "--threads", "1", "--no-progress"]


def _state(run):
    last = torch.load(run / runs.LAST, weights_only=True)
    metrics = [{k: v for k, v in row.items() if k not in TIMINGS} for row in runs.read_metrics(run)]
    return {"best": (run / runs.RUN_BEST).read_bytes(), "model": last["model"], "optimizer": last["optimizer"],
            "rng": last["rng"], "sampler": last.get("sampler"), "step": last["step"], "metrics": metrics,
            "status": json.loads((run / runs.STATUS).read_text())["state"]}


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def reference(folders, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("reference") / "run"
    with pytest.MonkeyPatch.context() as patch:  # one cache for the module's runs and their subprocesses
        patch.setenv("TINYSR_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert main(_argv(folders, run)) == 0
        yield _state(run)


@pytest.mark.parametrize("point, nth", POINTS, ids=[f"{p}@{n}" for p, n in POINTS])
def test_killed_at_a_point_then_resumed_equals_the_uninterrupted_run(tmp_path, folders, reference, point,  # noqa: F811
                                                                    nth):
    run = tmp_path / "run"
    env = {**os.environ, faults.ENV: f"{point}@{nth}", "PYTHONPATH": str(REPO / "src")}
    killed = subprocess.run([sys.executable, "-m", "tinysr", *_argv(folders, run)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, at the armed point
    recover = ["train", "--resume", str(run), "--threads", "1", "--no-progress"]
    assert main(recover if (run / runs.CONFIG).is_file() else _argv(folders, run)) == 0
    assert _equal(_state(run), reference)
    assert not list(run.glob(".*.tmp"))  # what the killed writer left half-written is gone


def test_a_killed_cache_build_is_rebuilt_with_the_same_arrays(tmp_path, folders):  # noqa: F811
    cache = tmp_path / "cache"
    code = ("import sys; from tinysr.data.cache import load_pairs; from tinysr.data.folder import image_folder\n"
            "load_pairs(image_folder(sys.argv[1]), scale=2, cache_dir=sys.argv[2], progress=False)\n")
    env = {**os.environ, faults.ENV: "cache:image@2", "PYTHONPATH": str(REPO / "src")}
    killed = subprocess.run([sys.executable, "-c", code, str(folders / "train"), str(cache)], env=env, timeout=300)
    assert killed.returncode == -9
    entry = next(cache.iterdir())
    assert list(entry.glob(".*.tmp")) and not (entry / "index.json").exists()  # killed mid-build
    rebuilt = load_pairs(image_folder(folders / "train"), scale=2, cache_dir=cache, progress=False)
    fresh = load_pairs(image_folder(folders / "train"), scale=2, cache_dir=tmp_path / "fresh", progress=False)
    assert not rebuilt.cache_hit and rebuilt.names == fresh.names
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt.lr, fresh.lr))
    assert not list(entry.glob(".*.tmp"))
