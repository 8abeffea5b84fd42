"""Training: validation, the loop state, and the loop that writes a run folder (its one step: `tinysr.train.cuda`).

The study's recipe is the default: L1 loss on 0..255 RGB (`loss`: see `tinysr.train.losses`), Adam (0.9, 0.999, eps
1e-8), learning rate 1e-4 halved every 200,000 steps, 300,000 steps, LR patch 48, batch 1, validation on the whole
validation set every 1,000 steps, best checkpoint by validation PSNR. The run folder it writes is described in
`tinysr.train.runs`.

Convention: the sampler yields NCHW float32 RGB 0..255 batches (EDSR's convention); validation feeds each whole LR
image (HWC RGB uint8 from the cache) through `tinysr.infer.upscale.upscale_array` and measures it with
`tinysr.metrics.measure` under the run's protocol, as `tinysr eval` does.

Determinism: on CPU a run is a function of its seed: the sampler draws from `np.random.default_rng(seed)`, and
last.pt holds the weights, optimizer, scheduler, torch RNG and sampler state, so "20 steps + resume + 20 steps"
gives the same weights as 40 steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tinysr import faults
from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError
from tinysr.models.window import upscale_array
from tinysr.evaluate import bicubic_upscaler
from tinysr.metrics import PROTOCOLS, measure
from tinysr.train import revive, runs
from tinysr.train.config import TrainConfig
from tinysr.train.cuda import FastPath, Step, build_train_step, portable_optimizer_state
from tinysr.train.distributed import DistContext, mean_over_ranks, rank0_writes
from tinysr.train.losses import LOSSES
from tinysr.train.start import training_sampler

REVIVE_UNTIL = 0.75  # fraction of `steps` after which dead units are left alone


@dataclass(frozen=True)
class TrainResult:
    step: int
    best_psnr: float
    best_step: int
    last_psnr: float


def select_device(name: str = "auto") -> torch.device:
    """"auto": cuda, then mps, then cpu; any other name is passed to torch."""
    if name != "auto":
        try:
            return torch.device(name)
        except RuntimeError as exc:
            raise TinySRError(f"--device {name!r}: {exc}") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """The multiplier of `config.learning_rate` after `step` optimizer steps."""
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, config.steps) / config.steps))
    return config.lr_gamma ** (step // config.lr_step)


def make_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam and its schedule, a closed form of the step so that a resume with a larger `steps` needs no history."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, config))


@torch.no_grad()
def validate(model: nn.Module, pairs: PairedImages, *, protocol: str, device: torch.device | str = "cpu",
             limit: int | None = None) -> tuple[float, float]:
    """Mean (PSNR, SSIM) of the model on whole images: the cache's LR in, SR measured against HR (as `tinysr eval`)."""
    rows = []
    for lr, hr in list(zip(pairs.lr, pairs.hr))[:limit]:
        sr = upscale_array(model, np.asarray(lr), device=device)
        rows.append(measure(sr, np.asarray(hr), scale=pairs.scale, protocol=PROTOCOLS[protocol]))
        faults.point("validate:image")
    model.train()
    return float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows]))


def bicubic_baseline(pairs: PairedImages, *, protocol: str, limit: int | None = None) -> float:
    """Mean PSNR of MATLAB bicubic on the same validation images as `validate`: the number a run must beat."""
    upscaler = bicubic_upscaler(pairs.scale)
    psnrs = [measure(upscaler(np.asarray(lr)), np.asarray(hr), scale=pairs.scale, protocol=PROTOCOLS[protocol])[0]
             for lr, hr in list(zip(pairs.lr, pairs.hr))[:limit]]
    return float(np.mean(psnrs))


def loss_name_at(step: int, config: TrainConfig) -> str:
    """The loss of the step after `step` steps: `final_loss` in the last `final_fraction` of them, else `loss`."""
    final = config.final_fraction and step >= round(config.steps * (1 - config.final_fraction))
    return config.final_loss if final else config.loss


def revive_due(step: int, config: TrainConfig) -> bool:
    """Whether dead units are revived after `step` steps."""
    return bool(config.revive_every) and step % config.revive_every == 0 and step <= REVIVE_UNTIL * config.steps


# ---------------------------------------------------------------- loop state, signals
class NonFiniteLoss(Exception):
    """The loss became NaN or inf; the loop stops and marks the run failed."""


@dataclass
class LoopState:
    """What the loop tracks besides the weights; saved in last.pt so a resume continues exactly."""

    step: int = 0
    eval_step: int = 0  # the last step that was evaluated and checkpointed
    best_psnr: float = -math.inf
    best_step: int = 0
    last_psnr: float = math.nan
    loss_sum: float = 0.0  # sum and count of losses since the last evaluation
    loss_count: int = 0
    train_seconds: float = 0.0  # time in training steps since the last evaluation
    wall_time: float = 0.0  # seconds spent by this run, over all its resumes, up to `started`
    started: float = dataclasses.field(default_factory=time.monotonic)
    trained_with: dict | None = None  # last.pt's record of this process's config (`runs.trained_with`)

    def elapsed(self) -> float:
        return self.wall_time + time.monotonic() - self.started


class Interrupts:
    """SIGINT and SIGTERM raise KeyboardInterrupt, but inside `deferred()` only once the block ends, so a training
    step is never cut in half (weights, optimizer, sampler and step counter always agree)."""

    def __init__(self) -> None:
        self.in_block, self.pending = False, False

    def _handle(self, signum: int, frame: object) -> None:
        if self.in_block:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.in_block = True
        try:
            yield
        finally:
            self.in_block = False
        if self.pending:
            raise KeyboardInterrupt


# ---------------------------------------------------------------- what the loop calls
def _advance(sampler, scheduler, state: LoopState, device: torch.device, step: Step) -> torch.Tensor:
    """Draw a batch, take one step (`tinysr.train.cuda.train_step`, wrapped), update the counters. The loss stays a
    device tensor, summed on the device: on CUDA it is read (and checked) at evaluation time only, so no host sync
    per step; on the CPU reading it is free, so a NaN/inf stops the run at the step that made it."""
    began = time.monotonic()
    lr, hr = sampler.next_batch()
    loss = step(lr.to(device, non_blocking=True), hr.to(device, non_blocking=True))
    if loss.device.type == "cpu" and not math.isfinite(loss):
        raise NonFiniteLoss(f"loss is {float(loss)} at step {state.step + 1}")
    scheduler.step()
    state.step += 1
    state.loss_sum, state.loss_count = state.loss_sum + loss, state.loss_count + 1
    state.train_seconds += time.monotonic() - began
    faults.point("train:step")
    return loss


def _log_evaluation(run_dir: Path, state: LoopState, *, psnr: float, ssim: float, learning_rate: float) -> None:
    steps_done = max(state.loss_count, 1)
    runs.append_metrics(run_dir, {
        "step": state.step, "train_loss": float(state.loss_sum) / steps_done, "val_psnr": psnr, "val_ssim": ssim,
        "sec_per_1k_steps": 1000.0 * state.train_seconds / steps_done, "learning_rate": float(learning_rate),
        "wall_time": state.elapsed(),
    })
    state.loss_sum, state.loss_count, state.train_seconds = 0.0, 0, 0.0


def _resume_state(model, optimizer, scheduler, sampler, state: LoopState, *, saved: dict, config) -> None:
    """Load last.pt's dict into the live objects (the inverse of `_checkpoint_state`)."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    # The config's Adam constants and learning rate, not last.pt's: equal unless a resume was forced to change them
    # (`runs.resume_run`), which then takes effect instead of being silently ignored.
    scheduler.base_lrs = [config.learning_rate] * len(optimizer.param_groups)
    for group in optimizer.param_groups:
        group.update(initial_lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                     eps=config.adam_eps)
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs):  # the schedule may now run to a new `steps`
        group["lr"] = base * learning_rate_factor(saved["step"], config)
    torch.set_rng_state(saved["rng"]["torch"].cpu())  # load_last maps to the device; RNG states live on the CPU
    if saved["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in saved["rng"]["cuda"][: torch.cuda.device_count()]])
    sampler.load_state_dict(saved["sampler"])
    for name in ("step", "eval_step", "best_psnr", "best_step", "last_psnr", "loss_sum", "loss_count",
                 "train_seconds", "wall_time"):
        setattr(state, name, saved["loop"][name])


def _checkpoint_state(model, optimizer, scheduler, sampler, state: LoopState) -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    # Field by field, not dataclasses.asdict: a fast-path loss sum is a device tensor, which asdict would deepcopy.
    saved = [f.name for f in dataclasses.fields(state) if f.name not in ("started", "trained_with")]
    loop = {name: getattr(state, name) for name in saved}
    loss_sum = loop["loss_sum"]
    loop |= {"loss_sum": float(loss_sum.detach()) if torch.is_tensor(loss_sum) else float(loss_sum),
             "wall_time": state.elapsed()}
    return {
        "step": state.step, "model": model.state_dict(), "optimizer": portable_optimizer_state(optimizer),
        "scheduler": scheduler.state_dict(),  # its lr_lambdas entry is [None]: the schedule is code
        "rng": {"torch": torch.get_rng_state(), "cuda": cuda}, "sampler": sampler.state_dict(), "loop": loop,
        runs.TRAINED_WITH: state.trained_with,
    }


def _read_device_loss(state: LoopState, device: torch.device, ctx: DistContext) -> None:
    """Wait for the queued GPU steps (their time counts as training), then read the loss sum once, averaged over
    ranks (a collective), and check it: the fast path's NaN check happens here, not at every step."""
    began = time.monotonic()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    state.train_seconds += time.monotonic() - began
    state.loss_sum = float(mean_over_ranks(torch.as_tensor(state.loss_sum, dtype=torch.float64, device=device), ctx))
    if not math.isfinite(state.loss_sum):
        raise NonFiniteLoss(f"loss is {state.loss_sum} between steps {state.eval_step} and {state.step}")


def _evaluate_and_save(model, val_pairs, optimizer, scheduler, sampler, state: LoopState, *, config: TrainConfig,
                       run_dir: Path, device, interrupts: Interrupts, ctx: DistContext = DistContext()) -> None:
    """Validate, then (as one uninterruptible unit) log, keep the best weights, write last.pt and status.json.
    Under DDP every rank comes here, but only rank 0 validates and writes; the others wait for it."""
    _read_device_loss(state, device, ctx)
    with rank0_writes(ctx) as writer:
        if not writer:
            state.eval_step, state.loss_sum, state.loss_count, state.train_seconds = state.step, 0.0, 0, 0.0
            return
        _validate_and_write(model, val_pairs, optimizer, scheduler, sampler, state, config=config, run_dir=run_dir,
                            device=device, interrupts=interrupts)


def _validate_and_write(model, val_pairs, optimizer, scheduler, sampler, state: LoopState, *, config: TrainConfig,
                        run_dir: Path, device, interrupts: Interrupts) -> None:
    psnr, ssim = validate(model, val_pairs, protocol=config.protocol, device=device, limit=config.val_limit)
    with interrupts.deferred():
        _log_evaluation(run_dir, state, psnr=psnr, ssim=ssim, learning_rate=optimizer.param_groups[0]["lr"])
        state.last_psnr, state.eval_step = psnr, state.step
        if psnr > state.best_psnr:
            state.best_psnr, state.best_step = psnr, state.step
            runs.save_best(run_dir, model, step=state.step, val_psnr=psnr, protocol=config.protocol)
        runs.save_last(run_dir, _checkpoint_state(model, optimizer, scheduler, sampler, state))
        runs.write_status(run_dir, state="running", step=state.step, steps=config.steps)


def _postfix(state: LoopState, loss: float) -> dict[str, str]:
    return {"loss": f"{loss:.2f}", "val": f"{state.last_psnr:.2f}", "best": f"{state.best_psnr:.2f}"}


# ---------------------------------------------------------------- the loop
def train(model: nn.Module, train_pairs: PairedImages, val_pairs: PairedImages, *, config: TrainConfig,
          run_dir: str | Path, device: str | torch.device = "cpu", resume: bool = False,
          progress: bool = True, fast: FastPath = FastPath(), ctx: DistContext = DistContext()) -> TrainResult:
    """Train `model` on patches of `train_pairs`, validating on `val_pairs`, into an opened run folder.

    The caller has written config.json (`runs.open_run` / `runs.resume_run`). With `resume`, training continues from
    run_dir/last.pt (from step 0 if the run never reached a checkpoint). Ctrl-C or SIGTERM writes last.pt, marks the
    run "interrupted" and re-raises KeyboardInterrupt; a NaN/inf loss marks it "failed" and raises TinySRError.
    `fast` (`tinysr.train.cuda`; default all off: the plain CPU path) picks the CUDA speed-ups; `ctx`
    (`tinysr.train.distributed`) the rank under torchrun: `config.batch_size` is then the global batch, split over ranks,
    and only rank 0 validates and writes the run folder.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    model.to(device)
    optimizer, scheduler = make_optimizer(model, config)
    saved = runs.load_last(run_dir, map_location=device) if resume else None
    sampler = training_sampler(train_pairs, patch=config.patch, batch_size=config.batch_size, augment=config.augment,
                               seed=config.seed, gpu_data=fast.gpu_data, device=device, ctx=ctx,
                               saved_state=saved["sampler"] if saved else None)
    state = LoopState(trained_with=runs.trained_with(run_dir, config) if ctx.is_main else None)
    if saved is not None:
        _resume_state(model, optimizer, scheduler, sampler, state, saved=saved, config=config)
    if state.step > config.steps:
        raise TinySRError(f"{run_dir}: the run is at step {state.step}, past --steps {config.steps}")
    probe = None
    if config.revive_every:
        revive.check_revivable(model)
        if ctx.world_size > 1:
            raise TinySRError("revive_every is not supported under torchrun (the ranks' weights would diverge)")
        probe = revive.probe_batch(train_pairs).to(device)
    loss_name = loss_name_at(state.step, config)
    # after the resume: it may adapt the optimizer
    step = build_train_step(model, optimizer, fast=fast, ctx=ctx, loss=LOSSES[loss_name])
    if ctx.is_main:
        runs.truncate_metrics(run_dir, state.step)
        runs.write_status(run_dir, state="running", step=state.step, steps=config.steps)
    bar = tqdm(total=config.steps, initial=state.step, desc="train", unit="step",
               disable=not progress or not ctx.is_main)
    loss = math.nan
    with Interrupts() as interrupts, bar:
        try:
            while True:
                if state.step > state.eval_step and (state.step % config.eval_every == 0 or state.step == config.steps):
                    _evaluate_and_save(model, val_pairs, optimizer, scheduler, sampler, state, config=config,
                                       run_dir=run_dir, device=device, interrupts=interrupts, ctx=ctx)
                    bar.set_postfix(_postfix(state, loss))
                if state.step >= config.steps:
                    break
                if (name := loss_name_at(state.step, config)) != loss_name:  # the final phase begins
                    loss_name = name
                    step = build_train_step(model, optimizer, fast=fast, ctx=ctx, loss=LOSSES[name])
                with interrupts.deferred():
                    loss = _advance(sampler, scheduler, state, device, step)
                    if probe is not None and revive_due(state.step, config):
                        revive.revive_dead_units(model, optimizer, probe)
                bar.update(1)
        except KeyboardInterrupt:
            if not ctx.is_main:
                raise
            runs.save_last(run_dir, _checkpoint_state(model, optimizer, scheduler, sampler, state))
            runs.write_status(run_dir, state="interrupted", step=state.step, steps=config.steps,
                              message=f"interrupted at step {state.step}; continue with --resume {run_dir}")
            raise
        except NonFiniteLoss as exc:
            message = (f"{exc}; stopped, keeping the checkpoints of step {state.eval_step} "
                       f"(try a lower --learning-rate)")
            if ctx.is_main:
                runs.write_status(run_dir, state="failed", step=state.step, steps=config.steps, message=message)
            raise TinySRError(f"{run_dir}: {message}") from None
        except TinySRError as exc:  # a failed write (disk full, read-only): record it if the disk still allows
            with contextlib.suppress(TinySRError):
                runs.write_status(run_dir, state="failed", step=state.step, steps=config.steps, message=str(exc))
            raise
    if ctx.is_main:
        runs.write_status(run_dir, state="finished", step=state.step, steps=config.steps,
                          message=f"best val PSNR {state.best_psnr:.3f} dB at step {state.best_step}")
    return TrainResult(step=state.step, best_psnr=state.best_psnr, best_step=state.best_step,
                       last_psnr=state.last_psnr)
