"""tinysr.train.distributed: torchrun environment, batch split, and 2 gloo ranks x batch 8 == 1 process x batch 16.

The equivalence holds because both runs see the same 16 crops: every rank draws the global batch from the shared
seed and keeps its half (`DevicePatchSampler(rank=, world_size=)`), and DDP averages the two half-batch gradients,
which is the gradient of the mean over 16. That is also how normal training samples: ranks see different crops.
"""

import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from tinysr.train.distributed import (
    DistContext,
    context_from_env,
    init_distributed,
    local_batch_size,
    mean_over_ranks,
    rank0_writes,
    shard,
    shutdown,
    unwrap,
    wrap_ddp,
)
from tinysr.errors import TinySRError
from tinysr.train.cuda import FastPath, build_step, portable_optimizer_state, prepare_model
from tinysr.data.gpu_sampler import DevicePatchSampler
from tinysr.models import EDSR, EDSRConfig

from helpers import smooth_pngs

TINY = EDSRConfig(n_blocks=1, n_feats=8, scale=2)
GLOBAL_BATCH, STEPS = 16, 4


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(40 + 4 * k, 36, 3), dtype=np.uint8) for k in range(3)]


def run(ctx: DistContext, *, steps: int, resume: dict | None = None) -> dict:
    """A few training steps of the tiny EDSR on this rank's share; returns what a checkpoint holds + the losses."""
    torch.manual_seed(0)
    model = EDSR(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = DevicePatchSampler(images(), None, scale=2, patch=12, batch_size=GLOBAL_BATCH, seed=7, device="cpu",
                                 rank=ctx.rank, world_size=ctx.world_size)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        sampler.load_state_dict(resume["sampler"])
    fast = FastPath()
    step = build_step(prepare_model(model, fast, wrap=lambda m: wrap_ddp(m, ctx)), optimizer, fast=fast)
    losses = [mean_over_ranks(step(*sampler.next_batch()), ctx) for _ in range(steps)]
    return {"model": unwrap(model).state_dict(), "optimizer": portable_optimizer_state(optimizer),
            "sampler": sampler.state_dict(), "losses": [float(x) for x in losses]}


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    env = {"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank)}
    import os

    os.environ.update(env, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx, device = init_distributed("cpu")
    assert ctx.backend == "gloo" and device == torch.device("cpu")
    result = run(ctx, steps=STEPS)
    with rank0_writes(ctx) as writer:
        if writer:
            torch.save(result, out)
    shutdown(ctx)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_checkpoint(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "last.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return torch.load(out, weights_only=True)


def test_two_gloo_ranks_of_batch_8_equal_one_process_of_batch_16(ddp_checkpoint):
    single = run(DistContext(), steps=STEPS)
    # Losses: the mean over ranks of two 8-crop means vs one 16-crop mean (~60 on 0..255): float32 order only.
    assert np.allclose(ddp_checkpoint["losses"], single["losses"], rtol=1e-6, atol=0)
    for name, value in single["model"].items():  # 4 Adam steps of lr 1e-3: float32 reduction order only
        assert torch.allclose(ddp_checkpoint["model"][name], value, rtol=0, atol=1e-6), name
    assert ddp_checkpoint["sampler"] == single["sampler"] == {"seed": 7, "batches_drawn": STEPS}


def test_a_ddp_checkpoint_resumes_in_one_cpu_process_as_if_never_split(ddp_checkpoint):
    assert not any(k.startswith("module.") for k in ddp_checkpoint["model"])  # unwrapped weights
    resumed = run(DistContext(), steps=2, resume=ddp_checkpoint)
    straight = run(DistContext(), steps=STEPS + 2)
    assert np.allclose(resumed["losses"], straight["losses"][STEPS:], rtol=1e-5, atol=0)
    for name, value in straight["model"].items():
        assert torch.allclose(resumed["model"][name], value, rtol=0, atol=1e-5), name


def test_context_from_env_reads_torchrun_variables_and_rejects_nonsense():
    assert context_from_env({}) == DistContext(rank=0, world_size=1, local_rank=0, backend=None)
    ctx = context_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (3, 4, 1, False)
    with pytest.raises(TinySRError, match="rank 4 / local rank 0 of world size 4"):
        context_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(TinySRError, match="must be integers, got 'x'"):
        context_from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_single_process_needs_no_process_group():
    ctx, device = init_distributed("cpu", env={})
    assert ctx.backend is None and device == torch.device("cpu")
    model = EDSR(TINY)
    assert wrap_ddp(model, ctx) is model and unwrap(model) is model
    with rank0_writes(ctx) as writer:
        assert writer is True
    assert mean_over_ranks(torch.tensor(2.5), ctx) == 2.5


def test_batch_split_errors_name_the_option():
    assert local_batch_size(16, 4) == 4
    with pytest.raises(TinySRError, match=r"--batch-size 16 must be a positive multiple of the number of ranks \(3\)"):
        local_batch_size(16, 3)
    batch = torch.arange(8).view(8, 1)
    assert shard(batch, DistContext(rank=1, world_size=4)).flatten().tolist() == [2, 3]
    with pytest.raises(TinySRError, match="--cuda-graphs runs in a single process only"):
        FastPath(cuda_graphs=True).check("cuda", world_size=2)


# ---------------------------------------------------------------- tinysr train under torchrun (CPU, gloo)


def train_args(tmp_path, out: str, *extra: str) -> list[str]:
    return ["train", "--blocks", "0", "--feats", "4", "--scale", "2", "--patch", "12", "--batch-size", "4",
            "--steps", "4", "--eval-every", "2", "--train-data", str(tmp_path / "train"), "--val-data",
            str(tmp_path / "val"), "--out", str(tmp_path / out), "--device", "cpu", "--threads", "1",
            "--no-progress", *extra]


def test_torchrun_two_ranks_train_like_one_process_and_resume_in_one(tmp_path, monkeypatch):
    """`torchrun --nproc_per_node 2 -m tinysr train` (2 x 2 crops) writes the same run as one process (4 crops);
    the DDP run then resumes in a single CPU process."""
    import os
    import subprocess
    import sys

    from tinysr.train import runs
    from tinysr.models.weights import read_weights
    from tinysr.cli import main

    smooth_pngs(tmp_path / "train", 3, seed=0)
    smooth_pngs(tmp_path / "val", 2, seed=1)
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tinysr",
           *train_args(tmp_path, "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(train_args(tmp_path, "single")) == 0
    ddp, single = runs.read_metrics(tmp_path / "ddp"), runs.read_metrics(tmp_path / "single")
    assert [r["step"] for r in ddp] == [2, 4]
    for a, b in zip(ddp, single):  # train_loss: mean over ranks of 2-crop means == 4-crop mean
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_psnr"] == pytest.approx(b["val_psnr"], abs=1e-4)
    ddp_weights, single_weights = (read_weights(tmp_path / r / "best.safetensors")[0] for r in ("ddp", "single"))
    for name, value in single_weights.items():
        assert torch.allclose(ddp_weights[name], value, rtol=0, atol=1e-6), name
    assert main(["train", "--resume", str(tmp_path / "ddp"), "--steps", "6", "--device", "cpu",
                 "--no-progress"]) == 0
    assert [r["step"] for r in runs.read_metrics(tmp_path / "ddp")] == [2, 4, 6]
    assert runs.read_json(tmp_path / "ddp" / "status.json")["state"] == "finished"


def test_a_batch_that_does_not_split_over_the_ranks_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from tinysr.cli import main

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    assert main(train_args(tmp_path, "bad")) == 2  # no process group is joined: the check comes first
    assert capsys.readouterr().err == ("tinysr: error: --batch-size 4 must be a positive multiple of the number "
                                       "of ranks (3); each rank takes batch-size / ranks crops\n")
    with pytest.raises(TinySRError, match="--cuda-graphs needs a CUDA device, got --device cpu"):
        FastPath(cuda_graphs=True).check("cpu")
