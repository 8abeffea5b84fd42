"""Content digests of what tinysr writes and reads back: weights, training checkpoints (and, in `data.cache`,
the cache arrays), so that a flipped byte or a truncation is an error that names the file, never a silent number.

`digest(obj)` is the sha256 of a canonical walk of `obj`: dicts in sorted key order, lists and tuples in order,
tensors and arrays as dtype + shape + raw bytes (C order, on the CPU), and other scalars by their `repr`. The same
content gives the same digest on any machine; any change of a value, a shape or a key gives another.

Weights files must carry their digest (`require_digest`): one without loads only when the caller vouches for it
(`trust=True`, the CLI's `--trust`), with a warning. Their values are range-checked too (`check_weight_values`,
`check_config_values`): a net with one NaN, or a weight of 3e38 that overflows float32, upscales to black.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinysr.errors import TinySRError

#: The largest weight magnitude (and config float) a tinysr net may hold. Trained nets stay far inside it: the largest
#: value in any bundled model is EDSR's RGB-mean buffer, 114 (0.449 x 255), and the largest trained weight is 2.7. A
#: bound ~4,000x above them leaves trained nets all the room they use, yet stops a damaged or hostile file: a weight of
#: 3e38 overflows float32 in the first conv, and the output comes out black with exit 0.
MAX_MAGNITUDE = 1e4

#: numpy dtype -> the name torch prints for it: a weights file's tensors digest the same read by torch
#: (`torch.Tensor`) or without it (`Tensors`, numpy arrays standing for tensors).
TORCH_DTYPE_NAMES = {np.dtype(k): f"torch.{v}" for k, v in {
    "float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool"}.items()}


class Tensors(dict):
    """A state dict of numpy arrays read without torch: `digest` walks it exactly as the same dict of torch tensors
    (dtype names as torch prints them), so a file's recorded digest checks either way."""


def _is_torch_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")  # no torch import to ask isinstance


def _feed_tensor_bytes(h: Any, dtype_name: str, shape: tuple, data: bytes) -> None:
    h.update(f"tensor {dtype_name} {shape};".encode())
    h.update(data)


def _feed(h: Any, obj: Any) -> None:
    if _is_torch_tensor(obj):
        import torch  # only a caller holding tensors gets here, so torch is already imported

        t = obj.detach().cpu().contiguous()
        _feed_tensor_bytes(h, str(t.dtype), tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes()
                           if t.numel() else b"")
    elif isinstance(obj, Tensors):
        h.update(f"dict {len(obj)};".encode())
        for key in sorted(obj, key=repr):
            h.update(f"{key!r}:".encode())
            array = np.ascontiguousarray(obj[key])
            if array.dtype not in TORCH_DTYPE_NAMES:
                raise TinySRError(f"tensor {key!r} has dtype {array.dtype}, which tinysr weights never hold")
            _feed_tensor_bytes(h, TORCH_DTYPE_NAMES[array.dtype], tuple(array.shape), array.tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(f"array {obj.dtype.str} {obj.shape};".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, Mapping):
        h.update(f"dict {len(obj)};".encode())
        for key in sorted(obj, key=repr):
            h.update(f"{key!r}:".encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__} {len(obj)};".encode())
        for item in obj:
            _feed(h, item)
    else:
        h.update(f"{type(obj).__name__} {obj!r};".encode())


def digest(obj: Any) -> str:
    """Hex sha256 of `obj`'s content (see the module doc)."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def check_digest(obj: Any, expected: str | None, *, path: Any) -> None:
    """TinySRError naming `path` unless `obj`'s digest is `expected` (None: not checked; a weights file calls
    `require_digest` first, so that None is refused there)."""
    if expected is not None and digest(obj) != expected:
        raise TinySRError(f"{path}: content does not match its recorded sha256 (the file is damaged; restore or "
                          "recreate it)")


# ---------------------------------------------------------------------------------------------------- trust

#: Weights files the command line vouched for with --trust (resolved paths). The CLI's pre-checks name them
#: (`tinysr.cli.checks.trust_models`), because the verbs' runners load a --model by name; library callers pass
#: `trust=True` instead. Replaced, never added to, on each command line, so one command's --trust ends with it.
_TRUSTED: frozenset[Path] = frozenset()


def trust_files(paths: Iterable[str | os.PathLike]) -> None:
    """Vouch for exactly these weights files (for the rest of this command): they load without a digest."""
    global _TRUSTED
    _TRUSTED = frozenset(Path(p).resolve() for p in paths)


def require_digest(expected: str | None, *, path: Any, trust: bool = False) -> None:
    """A weights file must record its digest: without one, a TinySRError naming `path` and --trust, unless the
    caller vouches for the file (`trust`, or --trust on the command line), which loads it with a warning."""
    if expected is not None:
        return
    if not (trust or Path(path).resolve() in _TRUSTED):
        raise TinySRError(f"{path}: no sha256 digest, so a damaged or altered file cannot be told from a good one; "
                          "if you know where it came from, pass --trust (API: trust=True)")
    warnings.warn(f"{path}: no sha256 digest; loaded unchecked (--trust)", stacklevel=3)


# ---------------------------------------------------------------------------------------------------- ranges


def _peak(tensor: Any) -> tuple[bool, float]:
    """(every value finite, the largest magnitude) of a float tensor or array; (True, 0.0) for other dtypes."""
    if _is_torch_tensor(tensor):
        array = tensor.detach().cpu()
        if not array.is_floating_point() or array.numel() == 0:
            return True, 0.0
        return bool(array.isfinite().all()), float(array.abs().max())
    array = np.asarray(tensor)
    if array.dtype.kind != "f" or array.size == 0:
        return True, 0.0
    return bool(np.isfinite(array).all()), float(np.abs(array).max())


def check_weight_values(state: Mapping[str, Any], *, path: Any) -> None:
    """TinySRError naming `path` and the first tensor (torch or numpy) that holds NaN or infinity, or a magnitude
    beyond `MAX_MAGNITUDE`."""
    for name, tensor in state.items():
        finite, peak = _peak(tensor)
        if not finite:
            raise TinySRError(f"{path}: weights {name!r} hold NaN or infinity; refusing a net that would upscale "
                              "to garbage")
        if peak > MAX_MAGNITUDE:
            raise TinySRError(f"{path}: weights {name!r} reach {peak:.3g}, beyond the {MAX_MAGNITUDE:g} no trained "
                              "net comes near; refusing a net that would upscale to garbage")


def check_number(value: Any, *, what: str, path: Any) -> None:
    """TinySRError naming `path` and `what` unless a float `value` is finite and within `MAX_MAGNITUDE` (other
    types pass: their own checks judge them)."""
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE):
        raise TinySRError(f"{path}: {what} is {value!r}; a finite number within {MAX_MAGNITUDE:g} expected")


def check_config_values(config: Any, *, path: Any) -> None:
    """Every float field of a model config (a dataclass: res_scale, rgb_range, ...) through `check_number`."""
    for field in dataclasses.fields(config):
        check_number(getattr(config, field.name), what=f"config {field.name}", path=path)
