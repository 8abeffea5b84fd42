"""A torch-free NumPy runtime for networks exported with `tinysr export --format numpy` (a small op interpreter).

Must not import torch (a test checks `sys.modules`): it depends on numpy, `tinysr.errors`, `tinysr.infer.tiling`,
`tinysr.infer.channels`, `tinysr.resize` (whose torch import is lazy; the runtime uses its torch-free
`imresize_matrices` and `imresize`) and, for Y-only tiny nets on RGB when Numba is installed, the compiled kernels
of `tinysr.infer.fused` (numpy and Numba only).

    model = tinysr.export.runtime.load("edsr-tiny.npz")
    sr = tinysr.export.runtime.upscale(lr, model, tile=256)      # HWC RGB(A) uint8 (or grey) -> uint8, `scale`x larger

Convention: `run` takes and returns CHW float32 RGB 0..255 (not clamped), the torch forward contract without the
batch axis; `upscale` takes the layouts of `tinysr.upscale` (HW or HWx1 grey, HWC RGB, HWC RGBA, uint8) and returns
the same layout, rounded half to even. Grey and alpha are handled by `tinysr.infer.channels`, as `tinysr.upscale`
handles them: grey is replicated to RGB and the output channels averaged; alpha is upscaled with MATLAB bicubic.

The program format is described in `tinysr.export.numpy_export`. Ops live in the visible dict `OPS`; a new network
family needs only a program writer there and, if it uses a new op, one function here.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from tinysr.errors import TinySRError
from tinysr.infer import fused as fused_stage
from tinysr.integrity import check_number, check_weight_values, require_digest
from tinysr.infer.channels import split_channels, upscale_with
from tinysr.infer.program import (  # noqa: F401 (the interpreter, re-exported as the runtime's API)
    OPS,
    MAX_FACTOR,
    PROGRAM_FORMAT,
    Program,
    check_program,
    conv2d,
    pixel_shuffle,
    receptive_radius,
    run,
)

def export_digest(program_text: str, config_text: str, weights: dict[str, np.ndarray]) -> str:
    """sha256 of an export's program, config and weights (names, dtypes, shapes, bytes), as the file records it."""
    h = hashlib.sha256(f"{program_text}\n{config_text}\n".encode())
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        h.update(f"{name} {array.dtype.str} {array.shape};".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _read_npz(path: str | os.PathLike) -> tuple[str, str, str | None, dict[str, np.ndarray]]:
    """(program text, config text, recorded digest or None, float32 weights) of an export file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        program_text, config_text = str(arrays.pop("tinysr_program")), str(arrays.pop("tinysr_config"))
        recorded = str(arrays.pop("tinysr_sha256")) if "tinysr_sha256" in arrays else None
    except FileNotFoundError:
        raise TinySRError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise TinySRError(f"{path}: not a tinysr NumPy export ({type(exc).__name__})") from None
    if recorded is not None and export_digest(program_text, config_text, arrays) != recorded:
        raise TinySRError(f"{path}: content does not match its recorded sha256 (the file is damaged)")
    if any(a.dtype.kind not in "fiu" for a in arrays.values()):
        raise TinySRError(f"{path}: holds non-numeric arrays")
    return program_text, config_text, recorded, {k: np.ascontiguousarray(v, dtype=np.float32)
                                                  for k, v in arrays.items()}


def _check_values(program: dict, config: dict, weights: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """The numbers a net computes with: every weight, and every float attribute of an op (a scale's factor, a
    leaky ReLU's slope) and of the config, finite and within `tinysr.integrity.MAX_MAGNITUDE`."""
    check_weight_values(weights, path=path)
    for op in program["ops"]:
        for key, value in op.items():
            check_number(value, what=f"op {op['op']} {key}", path=path)
    for key, value in config.items():
        check_number(value, what=f"config {key}", path=path)


def load(path: str | os.PathLike, *, trust: bool = False) -> Program:
    """Read a `.npz` written by `tinysr.export.numpy_export.export_numpy` (never unpickles); a damaged, truncated or
    malformed file is one TinySRError naming it (the digest, then the program's structure, bounds and values).

    trust: load a file without a digest (with a warning); every export tinysr writes has one."""
    program_text, config_text, recorded, weights = _read_npz(path)
    require_digest(recorded, path=path, trust=trust)
    try:
        program, config = json.loads(program_text), json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise TinySRError(f"{path}: not a tinysr NumPy export (bad JSON: {exc.msg})") from None
    check_program(program, weights, str(path))
    if not isinstance(config, dict):
        raise TinySRError(f"{path}: config is a {type(config).__name__}, not an object")
    _check_values(program, config, weights, path)
    scale = config.get("scale")
    if not isinstance(scale, int) or not 1 <= scale <= MAX_FACTOR:
        raise TinySRError(f"{path}: config scale {scale!r} is not an upscaling factor")
    return Program(ops=tuple(program["ops"]), weights=weights, config=config, input=program["input"],
                      output=program["output"])


# ---------------------------------------------------------------------------------------------------- images


def upscale(image: np.ndarray, model: Program, *, tile: int | None = None,
            overlap: int | None = None, fused: bool | None = None, workers: int = 1) -> np.ndarray:
    """A uint8 image (HW grey, HWC RGB or RGBA) -> the same layout `model.scale`x larger, uint8 (see the module
    docstring).

    tile: LR pixels per tile side (None: whole image). overlap: None uses `receptive_radius(model)` (exact).
    fused: run a Y-only ReLU tiny net on RGB as compiled kernels (`tinysr.infer.fused`, Numba, still no torch; the same
    pixels up to float rounding, ~10x faster than the interpreter). None: where it applies and Numba is installed;
    True: required (an error where it cannot apply); False: never.
    workers: tiles run at once on a thread pool (`run_tiled`; the compiled kernels and BLAS release the GIL); the
    output does not depend on it.
    """
    overlap = receptive_radius(model) if overlap is None else overlap

    def window_fn(window: np.ndarray) -> np.ndarray:
        return run(model, window.transpose(2, 0, 1)).transpose(1, 2, 0)

    colour, _alpha = split_channels(image)
    net = _fused_net(model, rgb=colour.shape[2] == 3, fused=fused)
    fn = window_fn if net is None else fused_stage.window_fn(net, fallback=window_fn)
    return upscale_with(fn, image, scale=model.scale, tile=tile, overlap=overlap, workers=workers)


def _fused_net(model: Program, *, rgb: bool, fused: bool | None):
    """The `tinysr.infer.fused.FusedNet` that `upscale` runs, or None (`tinysr.infer.fused.use` decides)."""
    if fused is False:
        return None
    net = fused_stage.fused_net_from_arrays(model.config, model.weights)
    needs = [(net is not None, fused_stage.NET_NEEDS), (rgb, "RGB input")]
    return net if fused_stage.use(fused, [why for met, why in needs if not met]) else None
