"""The one training step (`train_step`) and the CUDA speed-ups that wrap it: channels-last, bf16 autocast,
torch.compile, CUDA graphs, data on the GPU. The plain CPU step is `train_step` itself; every option wraps that same
function, as nanoGPT's `ctx` wraps its one loop body, so there is no second step to keep in line.

Read top to bottom: the options (`FastPath`), `prepare_model`, then `train_step`, its `precision` context, the
wrapped `eager_step`, the builders `build_step` / `build_train_step` and the CUDA-graph step, then the optimizer
helpers that the graph needs (`make_capturable`) and that the checkpoint needs (`portable_optimizer_state`).

Convention: a step takes ``lr`` (B, 3, p, p) and ``hr`` (B, 3, p*s, p*s), float32 NCHW RGB 0..255 on the model's
device, and returns the loss (`tinysr.train.losses`, default L1 on the 0..255 scale) as a 0-dim float32 tensor on that
device. A step never calls ``.item()``: reading the loss (a host sync) is the caller's business, at log time only.

Numerics: bf16 autocast keeps fp32 master weights (parameters and Adam state stay fp32; convs run in bf16) and the
loss is taken in fp32. bf16 keeps 8 significant bits, so the head conv sees its input (RGB minus the mean, -115..152)
rounded by up to 0.5 level; that is the price of bf16 on the input layer, no loss scaling is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.train.distributed import DistContext, wrap_ddp
from tinysr.train.losses import Loss, l1_rgb

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NO_CONTEXT = contextlib.nullcontext()  # the plain step's forward context (reusable)


@dataclass(frozen=True)
class FastPath:
    """Which CUDA speed-ups a training run uses; every one is off on CPU/MPS by default.

    channels_last: NHWC memory format for the model and the LR input (tensor-core friendly convs).
    bf16: bf16 autocast around the forward pass, fp32 master weights, fp32 loss.
    compile: `torch.compile` the model (slow first steps; a failure is an error, not a silent fallback).
    cuda_graphs: capture the whole fwd+bwd+Adam step in one CUDA graph (launch-bound small models / batches).
    gpu_data: keep the training images on the GPU and crop/augment/degrade there (`tinysr.data.gpu_sampler`).
    """

    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    gpu_data: bool = False

    @classmethod
    def default_for(cls, device: str | torch.device, *, world_size: int = 1) -> FastPath:
        """All off on CPU/MPS (the CPU path stays as it is). On CUDA: channels-last, bf16, GPU data, and CUDA
        graphs for a single process (DDP's all-reduce is not captured here); no compile (minutes of start-up)."""
        if torch.device(device).type != "cuda":
            return cls()
        return cls(channels_last=True, bf16=True, compile=False, cuda_graphs=world_size == 1, gpu_data=True)

    def check(self, device: str | torch.device, *, world_size: int = 1) -> None:
        """Raise TinySRError naming the option that cannot run on `device` / with `world_size` processes."""
        kind = torch.device(device).type
        if self.cuda_graphs and kind != "cuda":
            raise TinySRError(f"--cuda-graphs needs a CUDA device, got --device {device}")
        if self.cuda_graphs and world_size > 1:
            raise TinySRError(f"--cuda-graphs runs in a single process only, got {world_size} ranks; "
                              "use --no-cuda-graphs with torchrun")


def prepare_model(model: nn.Module, fast: FastPath, *, wrap: Callable[[nn.Module], nn.Module] | None = None
                  ) -> nn.Module:
    """Apply the model-side options; return the module that the step should call.

    `model` must already be on its device; channels-last converts its parameters in place. `wrap` (e.g. DDP) is
    applied before `torch.compile`, as PyTorch recommends. Checkpoint the original `model`, never the returned
    module (which may be a DDP or compiled wrapper sharing its parameters).
    """
    if fast.channels_last:
        model.to(memory_format=torch.channels_last)
    if next(model.parameters()).device.type == "cuda":
        # Fixed training shapes: let cuDNN time its algorithms once. A process-wide switch, set on purpose.
        torch.backends.cudnn.benchmark = True
    wrapped = wrap(model) if wrap is not None else model
    return torch.compile(wrapped) if fast.compile else wrapped


def train_step(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor, optimizer: torch.optim.Optimizer, *,
               loss: Loss = l1_rgb, ctx: contextlib.AbstractContextManager = NO_CONTEXT) -> torch.Tensor:
    """The one training step: an optimizer step of `loss` (`tinysr.train.losses`, default L1 on RGB) on 0..255 NCHW
    RGB batches; returns the loss as a detached 0-dim float32 tensor on the device (never read here: no host sync).

    `ctx` wraps the forward pass (bf16 autocast: `precision`), as nanoGPT's `ctx` wraps its loop body; the loss is
    taken in fp32. A non-finite loss is stepped like any other: the loop reads it and stops (`tinysr.train.loop`).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with ctx:
        value = loss(model, lr, hr).float()
    value.backward()
    optimizer.step()
    return value.detach()


def precision(fast: FastPath, device_type: str) -> contextlib.AbstractContextManager:
    """The forward's context: bf16 autocast with `fast.bf16`, else nothing. Its weight cache is off: CUDA graphs
    require it (PyTorch's AMP + graphs note), and each weight is cast once per forward anyway."""
    if not fast.bf16:
        return NO_CONTEXT
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, cache_enabled=False)


def eager_step(model: nn.Module, optimizer: torch.optim.Optimizer, *, fast: FastPath, loss: Loss = l1_rgb) -> Step:
    """`train_step` with the options that wrap it: channels-last input and the `precision` context."""
    memory_format = torch.channels_last if fast.channels_last else torch.contiguous_format
    ctx = precision(fast, next(model.parameters()).device.type)

    def step(lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return train_step(model, lr.contiguous(memory_format=memory_format), hr, optimizer, loss=loss, ctx=ctx)

    return step


def build_step(model: nn.Module, optimizer: torch.optim.Optimizer, *, fast: FastPath, warmup: int = 3,
               loss: Loss = l1_rgb) -> Step:
    """A training step `step(lr, hr) -> loss` for the module from `prepare_model`.

    `eager_step` unless `fast.cuda_graphs`; then the first call warms up on a side stream (`warmup` eager steps,
    undone afterwards so that the run is the same as an eager one), captures the same step (fwd+bwd+Adam) into one
    CUDA graph, and every call copies the batch into the graph's static inputs and replays it. The returned loss is
    a fresh tensor.
    """
    eager = eager_step(model, optimizer, fast=fast, loss=loss)
    if not fast.cuda_graphs:
        return eager
    make_capturable(optimizer)
    return _GraphedStep(model, optimizer, eager, fast=fast, warmup=warmup)


def build_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, *, fast: FastPath, ctx: DistContext,
                     loss: Loss = l1_rgb) -> Step:
    """The step of `tinysr.train.loop`'s loop: `build_step` on the prepared model, DDP-wrapped when there are
    several ranks (with every option off and one process, that is `train_step` itself on `model`)."""
    fast.check(next(model.parameters()).device, world_size=ctx.world_size)
    return build_step(prepare_model(model, fast, wrap=lambda m: wrap_ddp(m, ctx)), optimizer, fast=fast,
                      loss=loss)


class _GraphedStep:
    """`eager` (`eager_step`, the one training step) as one CUDA graph, captured at the first call (the batch
    shape is then fixed)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, eager: Step, *, fast: FastPath,
                 warmup: int) -> None:
        self.model, self.optimizer, self.eager, self.fast, self.warmup = model, optimizer, eager, fast, warmup
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.graph is None:
            self._capture(lr, hr)
        elif lr.shape != self.static_lr.shape or hr.shape != self.static_hr.shape:
            raise TinySRError(f"cuda graphs: batch shape changed from {tuple(self.static_lr.shape)} to "
                              f"{tuple(lr.shape)}; use --no-cuda-graphs for varying batch shapes")
        self.static_lr.copy_(lr)
        self.static_hr.copy_(hr)
        self.graph.replay()
        return self.static_loss.clone()

    def _capture(self, lr: torch.Tensor, hr: torch.Tensor) -> None:
        """PyTorch's whole-network capture recipe: warm up on a side stream, then capture on it."""
        memory_format = torch.channels_last if self.fast.channels_last else torch.contiguous_format
        self.static_lr = lr.clone().contiguous(memory_format=memory_format)
        self.static_hr = hr.clone()
        saved = _snapshot(self.model, self.optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):  # cuDNN autotuning, compile, lazy Adam state, allocator warm-up
                self.eager(self.static_lr, self.static_hr)
        torch.cuda.current_stream().wait_stream(side)
        _restore(self.model, self.optimizer, saved)  # the warm-up steps must not count as training
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.static_loss = self.eager(self.static_lr, self.static_hr)


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[list, dict]:
    params = [p.detach().clone() for p in model.parameters()]
    state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in optimizer.state.items()}
    return params, state


def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: tuple[list, dict]) -> None:
    """Put parameters and optimizer state back in place (same storage: the graph will capture these tensors).
    State that the warm-up created lazily is zeroed: a fresh Adam/AdamW state is all zeros (step 0)."""
    params, state = saved
    with torch.no_grad():
        for p, value in zip(model.parameters(), params):
            p.copy_(value)
        for p, s in optimizer.state.items():
            for k, v in s.items():
                if torch.is_tensor(v):
                    v.copy_(state[p][k]) if p in state else v.zero_()


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Switch an Adam/AdamW to `capturable=True` in place, with its learning rate as a device tensor.

    A float learning rate would be baked into the graph; a tensor one is read at every replay, and LR schedulers
    update it in place (`fill_`). Existing `step` counters move to the parameters' device.
    """
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        raise TinySRError(f"--cuda-graphs needs Adam or AdamW, got {type(optimizer).__name__}")
    for group in optimizer.param_groups:
        device = group["params"][0].device
        group["capturable"] = True
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(device=device, dtype=torch.float32)


def portable_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """`optimizer.state_dict()` that loads anywhere: float learning rates, `capturable` off, step counters on
    the CPU. Save this in `last.pt`; a graphed run calls `make_capturable` again after loading it."""
    raw = optimizer.state_dict()
    groups = []
    for group in raw["param_groups"]:
        group = dict(group)
        if torch.is_tensor(group["lr"]):
            group["lr"] = float(group["lr"])  # one host sync, at checkpoint time only
        if "capturable" in group:
            group["capturable"] = False
        groups.append(group)
    state = {i: {k: (v.detach().cpu() if k == "step" and torch.is_tensor(v) else v) for k, v in s.items()}
             for i, s in raw["state"].items()}
    return {"state": state, "param_groups": groups}

