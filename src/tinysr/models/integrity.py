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
import torch

from tinysr.errors import TinySRError


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
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


def check_finite(state: Mapping[str, torch.Tensor], *, path: Any) -> None:
    """TinySRError naming `path` and the first tensor that holds NaN or infinity."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TinySRError(f"{path}: weights {name!r} hold NaN or infinity; refusing a net that would upscale "
                              "to garbage")
