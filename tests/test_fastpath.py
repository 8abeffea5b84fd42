"""tinysr.train.cuda: option defaults and checks, CPU equivalence of the fast options, the graph-capture helpers.

The CUDA tests (`-k cuda`) need a GPU and skip without one (no hardware, not a failure); benchmarks/gpu_check.sh
runs them on the lent H100.
"""

import pytest
import torch

from tinysr.errors import TinySRError
from tinysr.train.cuda import (
    FastPath,
    _restore,
    _snapshot,
    build_step,
    make_capturable,
    portable_optimizer_state,
    prepare_model,
)
from tinysr.models import EDSR, EDSRConfig

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
TINY = EDSRConfig(n_blocks=1, n_feats=8, scale=2)


def batches(n: int, *, batch: int = 2, patch: int = 16, device: str = "cpu") -> list[tuple[torch.Tensor, ...]]:
    """Deterministic (lr, hr) pairs, 0..255: LR is the 2x2 mean of HR."""
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        hr = (torch.rand(batch, 3, 2 * patch, 2 * patch, generator=g) * 255).round()
        out.append((torch.nn.functional.avg_pool2d(hr, 2).to(device), hr.to(device)))
    return out


def train(fast: FastPath, data, *, device: str = "cpu", config: EDSRConfig = TINY):
    """Losses (floats, read after all steps) and final parameters of a fresh seeded model."""
    torch.manual_seed(0)
    model = EDSR(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = build_step(prepare_model(model, fast), optimizer, fast=fast)
    losses = [step(lr, hr) for lr, hr in data]
    return [float(x) for x in losses], torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


def test_default_for_cpu_is_all_off_and_cuda_turns_the_fast_path_on():
    assert FastPath.default_for("cpu") == FastPath(False, False, False, False, False)
    assert FastPath.default_for("mps") == FastPath()
    assert FastPath.default_for("cuda:1") == FastPath(channels_last=True, bf16=True, compile=False,
                                                      cuda_graphs=True, gpu_data=True)
    assert FastPath.default_for("cuda", world_size=4).cuda_graphs is False


def test_check_names_the_impossible_option():
    with pytest.raises(TinySRError, match="--cuda-graphs needs a CUDA device"):
        FastPath(cuda_graphs=True).check("cpu")
    with pytest.raises(TinySRError, match="single process only, got 2 ranks"):
        FastPath(cuda_graphs=True).check("cuda", world_size=2)
    FastPath(channels_last=True, bf16=True).check("cpu")  # allowed on CPU (that is how they are tested)


def test_eager_step_is_the_plain_adam_l1_step():
    data = batches(3)
    losses, params = train(FastPath(), data)
    torch.manual_seed(0)
    model = EDSR(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for (lr, hr), loss in zip(data, losses):
        optimizer.zero_grad()
        expected = (model(lr) - hr).abs().mean()
        expected.backward()
        optimizer.step()
        assert expected.item() == loss
    assert torch.equal(params, torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert 40 < losses[0] < 90  # an untrained net on 0..255 pixels: L1 of the order of the image's spread


def test_step_returns_a_detached_0dim_float32_tensor_without_reading_it():
    torch.manual_seed(0)
    model = EDSR(TINY)
    step = build_step(model, torch.optim.Adam(model.parameters()), fast=FastPath())
    loss = step(*batches(1)[0])
    assert loss.shape == () and loss.dtype == torch.float32 and not loss.requires_grad


def test_channels_last_on_cpu_matches_within_1e4_after_3_steps():
    data = batches(3)
    base, base_params = train(FastPath(), data)
    fast, fast_params = train(FastPath(channels_last=True), data)
    assert max(abs(a - b) for a, b in zip(base, fast)) <= 1e-4  # losses ~60: float32 reordering only
    assert torch.allclose(base_params, fast_params, rtol=0, atol=1e-6)


def test_bf16_autocast_on_cpu_matches_within_0_1_percent_and_keeps_fp32_weights():
    data = batches(3)
    base, base_params = train(FastPath(), data)
    fast, fast_params = train(FastPath(bf16=True), data)
    assert max(abs(a - b) / a for a, b in zip(base, fast)) <= 1e-3  # bf16 convs, fp32 loss and master weights
    assert fast_params.dtype == torch.float32
    assert (base_params - fast_params).abs().max() <= 5e-3  # 3 Adam steps of at most lr=1e-3 each


def test_snapshot_restore_undoes_warmup_steps_and_zeroes_lazy_adam_state():
    """The CUDA-graph warm-up trains for a few steps; `_restore` must make the run as if it had not."""
    data = batches(3)
    torch.manual_seed(0)
    model = EDSR(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = build_step(model, optimizer, fast=FastPath())
    saved = _snapshot(model, optimizer)  # fresh: no Adam state yet
    step(*data[0])
    step(*data[1])
    _restore(model, optimizer, saved)
    assert all(float(s["step"]) == 0 and not s["exp_avg"].any() for s in optimizer.state.values())
    replayed = [float(step(lr, hr)) for lr, hr in data]
    assert replayed == train(FastPath(), data)[0]


def test_make_capturable_turns_lr_into_a_tensor_that_schedulers_fill_in_place():
    model = EDSR(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    make_capturable(optimizer)
    lr_tensor = optimizer.param_groups[0]["lr"]
    assert torch.is_tensor(lr_tensor) and optimizer.param_groups[0]["capturable"] is True
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is lr_tensor and float(lr_tensor) == pytest.approx(5e-4)
    with pytest.raises(TinySRError, match="needs Adam or AdamW, got SGD"):
        make_capturable(torch.optim.SGD(model.parameters(), lr=0.1))


def test_portable_optimizer_state_resumes_eagerly_on_cpu():
    """A graphed run's optimizer (tensor lr, capturable) saves a state that a plain CPU Adam loads and steps."""
    data = batches(2)
    torch.manual_seed(0)
    model = EDSR(TINY)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    build_step(model, optimizer, fast=FastPath())(*data[0])
    reference = portable_optimizer_state(optimizer)
    make_capturable(optimizer)  # what a CUDA-graph run does; its state must still save portably
    state = portable_optimizer_state(optimizer)
    group = state["param_groups"][0]
    assert isinstance(group["lr"], float) and group["capturable"] is False
    assert group["lr"] == pytest.approx(1e-3, rel=1e-7)  # went through a float32 tensor
    assert all(s["step"].device.type == "cpu" for s in state["state"].values())
    assert {**group, "lr": 1e-3} == reference["param_groups"][0]
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(state)
    build_step(model, fresh, fast=FastPath())(*data[1])
    assert all(float(s["step"]) == 2 for s in fresh.state.values())


# ---------------------------------------------------------------- CUDA (run by benchmarks/gpu_check.sh)


@pytest.fixture
def deterministic_cudnn():
    saved = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    yield
    torch.backends.cudnn.deterministic = saved


@needs_cuda
def test_cuda_graph_step_matches_eager_fp32(deterministic_cudnn):
    """The graph replays the eager step's kernels, and the warm-up steps are undone: same run."""
    data = batches(6, batch=4, patch=24, device="cuda")
    eager, eager_params = train(FastPath(), data, device="cuda")
    graphed, graphed_params = train(FastPath(cuda_graphs=True), data, device="cuda")
    assert max(abs(a - b) / a for a, b in zip(eager, graphed)) <= 1e-5
    assert torch.allclose(eager_params, graphed_params, rtol=0, atol=1e-4)  # warm-up left in: ~3e-3 off


@needs_cuda
def test_cuda_fast_defaults_match_fp32_within_1_percent_and_learn():
    data = batches(20, batch=4, patch=24, device="cuda") * 3
    base, _ = train(FastPath(), data, device="cuda")
    fast, _ = train(FastPath.default_for("cuda"), data, device="cuda")
    assert max(abs(a - b) / a for a, b in zip(base, fast)) <= 1e-2
    assert sum(fast[-10:]) < 0.95 * sum(fast[:10])  # fp32 on CPU: 0.896


@needs_cuda
@pytest.mark.parametrize("graphs", [False, True])
def test_cuda_step_makes_no_host_sync(graphs):
    data = batches(4, batch=2, device="cuda")
    torch.manual_seed(0)
    model = EDSR(TINY).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    fast = FastPath(channels_last=True, bf16=True, cuda_graphs=graphs)
    step = build_step(prepare_model(model, fast), optimizer, fast=fast)
    step(*data[0])  # warm-up / capture may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [step(lr, hr) for lr, hr in data[1:]]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(x) for x in losses)


@needs_cuda
def test_cuda_graph_replay_follows_the_scheduler_learning_rate():
    data = batches(3, device="cuda")
    torch.manual_seed(0)
    model = EDSR(TINY).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1], gamma=0.0)
    step = build_step(model, optimizer, fast=FastPath(cuda_graphs=True))
    step(*data[0])
    scheduler.step()  # learning rate 0 from now on: a replay must leave the weights alone
    before = [p.detach().clone() for p in model.parameters()]
    step(*data[1])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(TinySRError, match="batch shape changed"):
        step(*batches(1, batch=3, device="cuda")[0])


def test_train_flags_override_the_device_defaults():
    from tinysr.cli.parser import build_parser
    from tinysr.cli.train import fast_path

    args = build_parser().parse_args(["train", "--bf16", "--no-channels-last", "--no-gpu-data"])
    assert fast_path(args, torch.device("cuda"), world_size=1) == FastPath(
        channels_last=False, bf16=True, compile=False, cuda_graphs=True, gpu_data=False)
    assert fast_path(args, torch.device("cpu"), world_size=1) == FastPath(bf16=True)
    args = build_parser().parse_args(["train", "--cuda-graphs"])
    with pytest.raises(TinySRError, match="--cuda-graphs needs a CUDA device, got --device cpu"):
        fast_path(args, torch.device("cpu"), world_size=1)
