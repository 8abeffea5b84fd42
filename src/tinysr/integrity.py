"""Content digests of what tinysr writes and reads back: weights, training checkpoints (and, in `data.cache`,
the cache arrays), so that a flipped byte or a truncation is an error that names the file, never a silent number.

`digest(obj)` is the sha256 of a canonical walk of `obj`: dicts in sorted key order, lists and tuples in order,
tensors and arrays as dtype + shape + raw bytes (C order, on the CPU), and other scalars by their `repr`. The same
content gives the same digest on any machine; any change of a value, a shape or a key gives another.
`check_finite` refuses weights holding NaN or infinity (a net with one NaN upscales to black).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from tinysr.errors import TinySRError

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
    """TinySRError naming `path` unless `obj`'s digest is `expected` (None: written before digests; not checked)."""
    if expected is not None and digest(obj) != expected:
        raise TinySRError(f"{path}: content does not match its recorded sha256 (the file is damaged; restore or "
                          "recreate it)")


def check_finite(state: Mapping[str, Any], *, path: Any) -> None:
    """TinySRError naming `path` and the first tensor (torch or numpy) that holds NaN or infinity."""
    for name, tensor in state.items():
        if _is_torch_tensor(tensor):
            import torch

            bad = tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
        else:
            array = np.asarray(tensor)
            bad = array.dtype.kind == "f" and not bool(np.isfinite(array).all())
        if bad:
            raise TinySRError(f"{path}: weights {name!r} hold NaN or infinity; refusing a net that would upscale "
                              "to garbage")
