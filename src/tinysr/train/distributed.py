"""Data-parallel training under torchrun: process group from the environment, batch split, DDP, rank-0 writes.

Launch: ``torchrun --standalone --nproc_per_node N -m tinysr train ...`` (one node), or torchrun's c10d rendezvous
for several nodes (README, "Multi-GPU"). torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is a
single process and nothing here does anything. Backend: nccl on CUDA (rank r uses cuda:LOCAL_RANK), gloo on CPU.

Conventions:
- ``--batch-size`` is the GLOBAL batch; it must be divisible by the world size, each rank takes batch/world.
- Sampling (decision): every rank draws the same global batch from the run's seed and keeps its own slice
  [r*b, (r+1)*b) (like torch's DistributedSampler shards one shared permutation). So ranks see different crops,
  N ranks x b crops see exactly the crops of 1 process x N*b, and the sampler state is the same on every rank. A
  resume with a different number of ranks therefore just loads it: the global batch sequence continues unchanged
  and only the slicing changes. (Per-rank seeds would also give different crops, but would tie the sampler state
  to the rank count: on a change it would have to be re-derived, and the batch sequence would change.)
- DDP averages the gradients over ranks, so the update equals the single-process one on the global batch, up to
  float summation order.
- Only rank 0 validates, logs and writes checkpoints, inside `rank0_writes` (barriers on both sides). Checkpoints
  hold the unwrapped model (`unwrap`: no ``module.`` prefix), so any world size, one CPU process included, resumes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from tinysr.errors import TinySRError

#: Rank 0 validates while the others wait at a barrier; NCCL's default 10-minute timeout is too short for that.
BARRIER_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among world_size processes; backend None = no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env(env: Mapping[str, str] = os.environ) -> DistContext:
    """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them; a single process when WORLD_SIZE is unset."""
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank, local_rank = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise TinySRError(f"torchrun environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers, got "
                          f"{env.get('RANK')!r}/{env.get('WORLD_SIZE')!r}/{env.get('LOCAL_RANK')!r}") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise TinySRError(f"torchrun environment: rank {rank} / local rank {local_rank} of world size {world_size}")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def init_distributed(device: str | torch.device, *, env: Mapping[str, str] = os.environ
                     ) -> tuple[DistContext, torch.device]:
    """Join the process group when launched by torchrun; return the context and this rank's device."""
    ctx, device = context_from_env(env), torch.device(device)
    if ctx.world_size == 1:
        return ctx, device
    if device.type == "cuda":
        if ctx.local_rank >= torch.cuda.device_count():
            raise TinySRError(f"local rank {ctx.local_rank} needs cuda:{ctx.local_rank}, but this node has "
                              f"{torch.cuda.device_count()} CUDA devices; lower --nproc_per_node")
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise TinySRError(f"--device {device}: torchrun training supports cuda (nccl) and cpu (gloo)")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT)
    return replace(ctx, backend=backend), device


def shutdown(ctx: DistContext) -> None:
    if ctx.backend is not None and dist.is_initialized():
        dist.destroy_process_group()


def local_batch_size(batch_size: int, world_size: int) -> int:
    """This rank's share of the global batch; TinySRError unless it splits evenly."""
    if batch_size < 1 or batch_size % world_size:
        raise TinySRError(f"--batch-size {batch_size} must be a positive multiple of the number of ranks "
                          f"({world_size}); each rank takes batch-size / ranks crops")
    return batch_size // world_size


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """`DistributedDataParallel` around `model` (already on this rank's device) when there are several ranks."""
    if ctx.world_size == 1:
        return model
    device = next(model.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers: what checkpoints hold."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):  # torch.compile's OptimizedModule
            module = module._orig_mod
        else:
            return module


def shard(batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Rows [r*b, (r+1)*b) of a global batch for rank r (a view)."""
    b = local_batch_size(batch.shape[0], ctx.world_size)
    return batch[ctx.rank * b : (ctx.rank + 1) * b]


class ShardedBatches:
    """Wraps a sampler whose `next_batch()` draws the global (lr, hr) batch; returns this rank's slice.

    For the CPU `PatchSampler`: every rank draws (and crops) the whole global batch, a few hundred microseconds,
    and keeps its slice; the state is the wrapped sampler's, identical on all ranks.
    """

    def __init__(self, sampler, ctx: DistContext) -> None:
        local_batch_size(sampler.batch_size, ctx.world_size)
        self.sampler, self.ctx = sampler, ctx

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.sampler.next_batch()
        return shard(lr, self.ctx), shard(hr, self.ctx)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def barrier(ctx: DistContext) -> None:
    if ctx.backend is None:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.local_rank])
    else:
        dist.barrier()


@contextmanager
def rank0_writes(ctx: DistContext) -> Iterator[bool]:
    """``with rank0_writes(ctx) as writer: if writer: save(...)``: all ranks wait until rank 0 has written."""
    barrier(ctx)
    try:
        yield ctx.is_main
    finally:
        barrier(ctx)


def mean_over_ranks(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of a tensor over ranks (a collective: every rank must call it), e.g. the logged train loss."""
    if ctx.backend is None:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / ctx.world_size
