"""Run a network on images: the engine's one entry, `upscale`, with tiling, x8 self-ensemble, alpha and grey.

Convention: images are uint8 at this boundary, HW (grey), HWC RGB or HWC RGBA; a network is a `tinysr.infer.network
.Network` (torch-free) or, where torch is installed, a torch `nn.Module` taking and returning NCHW float32 RGB 0..255.
- RGB goes through the network; the output is rounded half to even and clipped to 0..255.
- Grey is replicated to RGB and the output channels averaged; alpha is upscaled with MATLAB bicubic and re-attached
  (`tinysr.infer.channels`, shared with the NumPy runtime and ONNX Runtime).

The engine (`choose_engine`), the fastest that applies, with no size rule:
1. "fused": a Y-only, bicubic-anchored ReLU tiny net (every bundled one) or a compact net, on RGB without
   self-ensemble, runs as compiled kernels (`tinysr.infer.fused`, `tinysr.infer.fused_compact`, Numba), on every
   core: a whole image is cut into `AUTO_TILE` tiles with the exact overlap (tiled equals untiled bit for bit), run
   on a thread pool;
2. "torch": any other net, self-ensemble or a non-CPU device, where torch is installed;
3. "numpy": otherwise, the net's program (`tinysr.infer.program`).
Tiling (see `tinysr.infer.tiling`) and self-ensemble live here, not in the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinysr.cpu import cores
from tinysr.errors import TinySRError
from tinysr.families import config_to_dict
from tinysr.infer import fused as fused_stage
from tinysr.infer import fused_compact
from tinysr.infer.channels import upscale_with
from tinysr.infer.network import Network
from tinysr.infer.tiling import WindowFn
from tinysr.infer.weights import TORCH_EXTRA, torch_available

ENGINES = ("fused", "torch", "numpy")
#: The nets the fused engine runs (the error text of `fused=True` where it cannot apply).
FUSED_NEEDS = f"{fused_stage.NET_NEEDS}, or {fused_compact.NET_NEEDS}"
#: LR tile side when the fused kernels split a whole image over the cores: the overlap re-computes a few rows and
#: columns per tile (6 of 512 for tiny-1k-x2, ~2.4 % more work), and 12 tiles of a 1080p frame keep 2-16 cores busy.
AUTO_TILE = 512
#: The 8 symmetries of the square as (quarter turns, mirror), identity first (`tinysr.models.window.DIHEDRAL`).
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


def is_torch_module(model: Any) -> bool:
    """Whether `model` is a torch `nn.Module` (asked without importing torch)."""
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(model).__mro__)


def receptive_radius(model: Network | Any) -> int:
    """LR pixels of context each output pixel depends on: the smallest exact tiling overlap."""
    if isinstance(model, Network):
        return model.receptive_radius()
    from tinysr.models.window import receptive_radius as torch_radius

    return torch_radius(model)


def scale_of(model: Network | Any) -> int:
    return model.scale if isinstance(model, Network) else int(model.config.scale)


# ---------------------------------------------------------------------------------------------------- the engine


def _float32_on_cpu(model: Network | Any) -> bool:
    if isinstance(model, Network):
        return True
    param = next(model.parameters(), None)
    return param is not None and param.device.type == "cpu" and str(param.dtype) == "torch.float32"


def _fused_of(model: Network | Any) -> fused_stage.FusedNet | fused_compact.CompactNet | None:
    """The model as the compiled kernels' arrays: a Y-only tiny net's `FusedNet`, a compact net's `CompactNet`, or
    None where neither applies."""
    if isinstance(model, Network):
        if model.fused is not None:
            return model.fused
        return fused_compact.compact_net_from_arrays(config_to_dict(model.config), model.arrays)
    if not _float32_on_cpu(model):
        return None
    net = fused_stage.fused_net(model)
    return net if net is not None else fused_compact.compact_net(model)


def choose_engine(model: Network | Any, *, self_ensemble: bool, device: str, rgb: bool, fused: bool | None) -> str:
    """The engine that runs `model` (see the module docstring). fused: None picks; True requires the kernels (a
    one-line error names the first unmet need); False never takes them."""
    on_cpu = str(device) == "cpu" and _float32_on_cpu(model)
    net = _fused_of(model) if fused is not False and on_cpu else None
    needs = [(on_cpu, "a float32 model on CPU"), (net is not None, FUSED_NEEDS),
             (rgb and not self_ensemble, "RGB input without self-ensemble")]
    if fused_stage.use(fused, [why for met, why in needs if not met]):
        return "fused"
    if is_torch_module(model) or torch_available():
        return "torch"
    if not on_cpu:
        raise TinySRError(f"device {device!r} needs torch ({TORCH_EXTRA})")
    return "numpy"


def _numpy_window_fn(net: Network, *, self_ensemble: bool) -> WindowFn:
    """The program on a window: HWC uint8 -> HWC float32 0..255; with self-ensemble the mean over `DIHEDRAL`."""

    def once(window: np.ndarray) -> np.ndarray:
        return net.run(np.ascontiguousarray(window.transpose(2, 0, 1), dtype=np.float32)).transpose(1, 2, 0)

    def ensemble(window: np.ndarray) -> np.ndarray:
        total = None
        for quarter_turns, flip in DIHEDRAL:
            t = np.rot90(window, quarter_turns)
            y = once(t[:, ::-1] if flip else t)
            y = np.rot90(y[:, ::-1] if flip else y, -quarter_turns)
            total = y if total is None else total + y
        return total / np.float32(len(DIHEDRAL))

    return ensemble if self_ensemble else once


def network_window_fn(model: Network | Any, *, device: str = "cpu", self_ensemble: bool = False,
                      quantize: bool = False, fused: bool | None = None, rgb: bool = True) -> WindowFn:
    """The window function of `run_tiled` for `model` on the engine `choose_engine` picks: HWC uint8 -> HWC float32
    0..255, or with `quantize` HWC uint8 already rounded (the same pixels; for RGB, where no channel mean follows).
    The fused kernels always round, so they serve only `quantize` callers (`upscale`); others get a float engine."""
    engine = choose_engine(model, self_ensemble=self_ensemble, device=device, rgb=rgb and quantize, fused=fused)
    return _window_fn(model, engine, device=device, self_ensemble=self_ensemble, quantize=quantize)


def _window_fn(model: Network | Any, engine: str, *, device: str, self_ensemble: bool, quantize: bool) -> WindowFn:
    if engine == "fused":
        net = _fused_of(model)
        if isinstance(net, fused_compact.CompactNet):  # every window size runs there
            return fused_compact.window_fn(net)

        # a tiny net's windows thinner than 2 pixels (rare: a 1-pixel image or tile edge) take another engine
        def fallback(window: np.ndarray) -> np.ndarray:
            return network_window_fn(model, device=device, quantize=True, fused=False)(window)

        return fused_stage.window_fn(net, fallback=fallback)
    if engine == "torch":
        from tinysr.models.window import window_fn

        module = model.to_torch() if isinstance(model, Network) else model
        return window_fn(module, device=device, self_ensemble=self_ensemble, quantize=quantize)
    return _numpy_window_fn(model, self_ensemble=self_ensemble)


# ---------------------------------------------------------------------------------------------------- the whole image


def upscale(image: np.ndarray, model: Network | Any, *, tile: int | None = None, overlap: int | None = None,
            self_ensemble: bool = False, device: str = "cpu", progress: Callable[[int], None] | None = None,
            workers: int | None = None, fused: bool | None = None) -> np.ndarray:
    """Upscale a uint8 image (HW grey, HWC RGB or RGBA) by the model's scale; same layout out, uint8.

    tile: LR pixels per tile side (None: the whole image, which the fused engine still splits into `AUTO_TILE`
    tiles over the cores, exactly). overlap: LR context per side; None uses `receptive_radius(model)`, which makes
    the tiled result equal the untiled one. self_ensemble: average the 8 dihedral transforms (x8 time). progress:
    called with the number of tiles done. workers: tiles run at once (None: every core for the fused engine and for
    torch with tiles, each tile on one torch thread; 1 otherwise); the output does not depend on it. fused: the
    engine choice (`choose_engine`): None picks the fastest, True requires the compiled kernels, False never.
    """
    if not isinstance(model, Network) and not is_torch_module(model):
        raise TinySRError(f"model must be a tinysr Network (tinysr.load_model) or a torch module; got "
                          f"{type(model).__name__}")
    overlap = receptive_radius(model) if overlap is None else overlap
    # grey output averages the float channels, so only RGB(A) windows may come back rounded
    rgb_only = getattr(image, "ndim", 0) == 3 and image.shape[2] in (3, 4)
    engine = choose_engine(model, self_ensemble=self_ensemble, device=device, rgb=rgb_only, fused=fused)
    fn = _window_fn(model, engine, device=device, self_ensemble=self_ensemble, quantize=rgb_only)
    if engine == "fused":
        workers = cores() if workers is None else workers
        if tile is None and workers > 1 and max(image.shape[:2]) > AUTO_TILE:
            tile = AUTO_TILE
        return upscale_with(fn, image, scale=scale_of(model), tile=tile, overlap=overlap, progress=progress,
                            workers=workers)
    if engine == "torch":
        return _upscale_torch(fn, image, model, tile=tile, overlap=overlap, progress=progress, workers=workers,
                              device=device)
    return upscale_with(fn, image, scale=scale_of(model), tile=tile, overlap=overlap, progress=progress,
                        workers=workers or 1)


def _upscale_torch(fn: WindowFn, image: np.ndarray, model: Any, *, tile: int | None, overlap: int,
                   progress: Callable[[int], None] | None, workers: int | None, device: str) -> np.ndarray:
    """Tiles on torch: with tiles on CPU, `workers` tiles at once on one torch thread each (as fast as one tile on all
    threads at tile 512, faster at 256: a tiny net's thin convs scale poorly across threads)."""
    import torch

    if workers is None:
        workers = torch.get_num_threads() if str(device) == "cpu" and tile is not None else 1
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)
    try:
        return upscale_with(fn, image, scale=scale_of(model), tile=tile, overlap=overlap, progress=progress,
                            workers=workers)
    finally:
        torch.set_num_threads(threads)


def upscale_float(model: Network | Any, lr: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """One HWC RGB uint8 image through `model` on a float engine (torch where installed, else NumPy): HWC float32
    0..255, unrounded (evaluation, where the protocol rounds)."""
    if lr.ndim != 3 or lr.shape[2] != 3 or lr.dtype != np.uint8:
        raise ValueError(f"expected HWC RGB uint8, got {lr.dtype} {lr.shape}")
    return network_window_fn(model, device=device, quantize=False, fused=False)(lr)
