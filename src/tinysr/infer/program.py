"""The engine's op interpreter: a network as a program of NumPy ops on CHW float32 arrays, run without torch.

A program is {"format": 1, "input": "lr", "output": "sr", "ops": [...]}, each op a dict {"op": name, "in": [names],
"out": name, ...attributes} (the op list and attributes are documented in `tinysr.export.numpy_export`). Every family
writes its deployed forward pass as such a program (`tinysr.families`); the engine runs it for nets that the compiled
kernels (`tinysr.infer.fused`) do not cover, and `tinysr.runtime` runs `.npz` exports with it. Programs read from a
file are checked first (`check_program`: known ops, defined inputs, bounded attributes and shapes).

Convention: `run` takes and returns CHW float32 RGB 0..255 (not clamped), the torch forward contract without the
batch axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysr.errors import TinySRError
from tinysr.receptive import receptive_radius_of
from tinysr.resize import imresize_matrices

PROGRAM_FORMAT = 1


# ---------------------------------------------------------------------------------------------------- ops


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int) -> np.ndarray:
    """Cross-correlation with zero padding, as torch's Conv2d: x (C, H, W), weight (O, C, kh, kw) -> (O, H', W').

    One matmul per kernel tap, accumulated: for the few channels of these nets this moves less memory than an
    im2col matrix (which is kh*kw times the input) and still runs in BLAS.
    """
    channels, height, width = x.shape
    n_out, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding))) if padding else x
    out_h, out_w = height + 2 * padding - kh + 1, width + 2 * padding - kw + 1
    out = np.empty((n_out, out_h * out_w), dtype=np.float32)
    out[...] = bias[:, None]
    for dy in range(kh):
        for dx in range(kw):
            patch = xp[:, dy:dy + out_h, dx:dx + out_w].reshape(channels, -1)
            out += weight[:, :, dy, dx] @ patch
    return out.reshape(n_out, out_h, out_w)


def pixel_shuffle(x: np.ndarray, factor: int) -> np.ndarray:
    """(C*f*f, H, W) -> (C, H*f, W*f), torch's PixelShuffle (channel c*f*f + i*f + j goes to row offset i, col j)."""
    channels, height, width = x.shape
    c = channels // (factor * factor)
    x = x.reshape(c, factor, factor, height, width).transpose(0, 3, 1, 4, 2)
    return np.ascontiguousarray(x.reshape(c, height * factor, width * factor))


def _op_conv2d(args: list[np.ndarray], op: dict, weights: dict[str, np.ndarray]) -> np.ndarray:
    return conv2d(args[0], weights[op["weight"]], weights[op["bias"]], int(op["padding"]))


def _op_shift(args: list[np.ndarray], op: dict, weights: dict[str, np.ndarray]) -> np.ndarray:
    return args[0] + np.float32(op["sign"]) * weights[op["value"]][:, None, None]


def bicubic_upscale(x: np.ndarray, factor: int) -> np.ndarray:
    """(C, H, W) float32 -> (C, H*f, W*f): MATLAB bicubic, float path (`tinysr.resize.imresize_matrices`), as the
    tiny family's anchor (`tinysr.models.ops.bicubic_upsample`) computes it: one matrix product per axis."""
    for axis, matrix in imresize_matrices(x.shape[1:], factor):
        m = matrix.astype(np.float32)
        x = np.matmul(m, x) if axis == 0 else np.matmul(x, m.T)
    return x


def _op_prelu(args: list[np.ndarray], op: dict, weights: dict[str, np.ndarray]) -> np.ndarray:
    x = args[0]
    return np.where(x >= 0, x, x * weights[op["weight"]][:, None, None])


#: op name -> f(inputs, op dict, weights) -> output, every array CHW float32.
OPS: dict[str, Callable[[list[np.ndarray], dict, dict[str, np.ndarray]], np.ndarray]] = {
    "conv2d": _op_conv2d,
    "relu": lambda args, op, w: np.maximum(args[0], np.float32(0)),
    "scale": lambda args, op, w: args[0] * np.float32(op["factor"]),
    "add": lambda args, op, w: args[0] + args[1],
    "pixel_shuffle": lambda args, op, w: pixel_shuffle(args[0], int(op["factor"])),
    "channel_shift": _op_shift,
    "prelu": _op_prelu,
    "leaky_relu": lambda args, op, w: np.where(args[0] >= 0, args[0], args[0] * np.float32(op["slope"])),
    "channels": lambda args, op, w: args[0][int(op["start"]):int(op["stop"])],
    "concat": lambda args, op, w: np.concatenate(args, axis=0),
    "repeat_channels": lambda args, op, w: np.repeat(args[0], int(op["repeats"]), axis=0),
    "bicubic_upscale": lambda args, op, w: bicubic_upscale(args[0], int(op["factor"])),
}


# ---------------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Program:
    """A runnable program: the op list, float32 weights by name, the config dict, and the scale."""

    ops: tuple[dict[str, Any], ...]
    weights: dict[str, np.ndarray]
    config: dict[str, Any]
    input: str
    output: str

    @property
    def scale(self) -> int:
        return int(self.config["scale"])


#: Bounds that keep a damaged or hostile program from asking for absurd memory (the bundled nets are far inside).
MAX_CHANNELS, MAX_KERNEL, MAX_FACTOR = 4096, 15, 8
#: (op, integer attribute) -> its allowed range.
_INTS = {("conv2d", "padding"): (0, MAX_KERNEL), ("pixel_shuffle", "factor"): (1, MAX_FACTOR),
         ("bicubic_upscale", "factor"): (1, MAX_FACTOR), ("repeat_channels", "repeats"): (1, MAX_FACTOR**2),
         ("channels", "start"): (0, MAX_CHANNELS), ("channels", "stop"): (1, MAX_CHANNELS),
         ("channel_shift", "sign"): (-1, 1)}


def _check_op(op: Any, known: set[str], weights: dict[str, np.ndarray]) -> str | None:
    """What is wrong with one op (None if nothing): its name, inputs, attributes and weights' shapes."""
    if not isinstance(op, dict) or not isinstance(op.get("out"), str):
        return f"a malformed op {str(op)[:60]!r}"
    if op.get("op") not in OPS:
        return f"unknown op {op.get('op')!r}; this runtime knows {', '.join(OPS)}"
    if not isinstance(op.get("in"), list) or not op["in"] or any(name not in known for name in op["in"]):
        return f"op {op['op']} reads an undefined value {op.get('in')!r}"
    for (name, key), (low, high) in _INTS.items():
        if op["op"] == name and not (isinstance(op.get(key), int) and low <= op[key] <= high):
            return f"op {op['op']} has {key}={op.get(key)!r}, outside {low}..{high}"
    missing = [op[k] for k in ("weight", "bias", "value") if k in op and op[k] not in weights]
    if missing:
        return f"op {op['op']} needs missing arrays {missing}"
    if op["op"] == "conv2d":
        w = weights[op["weight"]]
        if w.ndim != 4 or max(w.shape[:2]) > MAX_CHANNELS or max(w.shape[2:]) > MAX_KERNEL or w.shape[2] % 2 == 0:
            return f"op conv2d has a weight of shape {w.shape}"
    return None


def check_program(program: Any, weights: dict[str, np.ndarray], path: str) -> None:
    if not isinstance(program, dict) or program.get("format") != PROGRAM_FORMAT:
        found = program.get("format") if isinstance(program, dict) else type(program).__name__
        raise TinySRError(f"{path}: program format {found!r}, this runtime reads {PROGRAM_FORMAT}")
    known = {program.get("input")}
    for op in program.get("ops") if isinstance(program.get("ops"), list) else [None]:
        problem = _check_op(op, known, weights)
        if problem:
            raise TinySRError(f"{path}: {problem}")
        known.add(op["out"])
    if program.get("output") not in known:
        raise TinySRError(f"{path}: the program's output {program.get('output')!r} is never computed")


def run(model: Program, lr: np.ndarray) -> np.ndarray:
    """Interpret the program on one image: CHW float32 RGB 0..255 -> CHW float32 0..255, `scale`x larger."""
    values = {model.input: np.asarray(lr, dtype=np.float32)}
    for op in model.ops:
        values[op["out"]] = OPS[op["op"]]([values[name] for name in op["in"]], op, model.weights)
    return values[model.output]


def receptive_radius(model: Program) -> int:
    """The exact tiling overlap, from the program's longest conv/shuffle chain (see `tiling.receptive_radius_of`).

    Walks the ops in order, keeping for every value the layer chain of its longest path.
    """
    chains: dict[str, list[tuple[str, int]]] = {model.input: []}
    for op in model.ops:
        chain = max((chains[name] for name in op["in"]), key=lambda c: receptive_radius_of(c) if c else 0)
        if op["op"] == "conv2d":
            chain = chain + [("conv", (model.weights[op["weight"]].shape[2] - 1) // 2)]
        elif op["op"] == "pixel_shuffle":
            chain = chain + [("shuffle", int(op["factor"]))]
        elif op["op"] == "bicubic_upscale":  # 4 taps: reaches 2 input pixels, then a scale change like a shuffle
            chain = chain + [("conv", 2), ("shuffle", int(op["factor"]))]
        chains[op["out"]] = chain
    return receptive_radius_of(chains[model.output])
