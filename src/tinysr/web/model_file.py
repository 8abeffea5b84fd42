"""A net as the JSON the browser page runs (`page/engine.js`), torch-free.

Format (``"format": "tinysr-web-model", "version": 1``), one file per model:
    name, scale, params   the model's name, integer scale and trainable parameters
    radius                LR pixels of context per tile side that make tiled equal untiled (the receptive radius)
    taps                  MATLAB bicubic upscaling by `scale` as periodic taps (`tinysr.resize.phase_taps`):
                          {"offsets": [[int] * 4] * scale, "weights": [[float64] * 4] * scale}, zero-padded to 4
    kind "luma-anchor"    a Y-only bicubic-anchored net (`tinysr.infer.fused.FusedNet`): "luma" (3 float32, RGB ->
                          Y on 0..255), "luma_offset" (16), "gain" (3 float32, RGB levels per unit of residual),
                          "relu" (bool: after every conv but the last), "convs": [{"shape": [O, C, k, k],
                          "weight": b64, "bias": b64}]
    kind "program"        an RGB net as the NumPy export's program (`tinysr.export.numpy_export`): "program"
                          ({"input", "output", "ops"}) and "tensors" ({name: {"shape", "data": b64}})
b64: base64 of the float32 array, little-endian, C order.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

from tinysr.errors import TinySRError
from tinysr.resize import phase_taps

FORMAT = "tinysr-web-model"
VERSION = 1
#: The NumPy-runtime ops `page/engine.js` implements for a "program" model (the RGB nets; EDSR needs the first 5,
#: compact nets conv2d, prelu, scale, repeat_channels, add and pixel_shuffle).
PROGRAM_OPS = ("conv2d", "relu", "add", "pixel_shuffle", "channel_shift", "scale", "prelu", "leaky_relu",
               "repeat_channels")


def b64(array: np.ndarray) -> str:
    """base64 of an array as little-endian float32, C order."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def taps(scale: int) -> dict[str, list[list]]:
    """`phase_taps(scale)` as two scale x 4 lists (weight 0 at offset 0 where a phase has fewer taps)."""
    offsets, weights = [], []
    for phase in phase_taps(scale):
        offsets.append([k for k, _ in phase] + [0] * (4 - len(phase)))
        weights.append([w for _, w in phase] + [0.0] * (4 - len(phase)))
    return {"offsets": offsets, "weights": weights}


def _header(name: str, scale: int, params: int, radius: int, kind: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "name": name, "scale": int(scale), "params": int(params),
            "radius": int(radius), "taps": taps(int(scale)), "kind": kind}


def luma_anchor_model(net, *, name: str, params: int, radius: int) -> dict[str, Any]:
    """The page's model for a `tinysr.infer.fused.FusedNet` (scale, weights, biases, relu, luma, luma_offset,
    gain): the fused computation, run by `engine.js` as the Numba kernels run it."""
    convs = [{"shape": list(w.shape), "weight": b64(w), "bias": b64(b)} for w, b in zip(net.weights, net.biases)]
    return {**_header(name, net.scale, params, radius, "luma-anchor"),
            "luma": [float(v) for v in np.asarray(net.luma, np.float32)], "luma_offset": float(net.luma_offset),
            "gain": [float(v) for v in np.asarray(net.gain, np.float32)], "relu": bool(net.relu), "convs": convs}


def program_model(program: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, name: str, scale: int,
                  params: int, radius: int) -> dict[str, Any]:
    """The page's model for a NumPy export (its program and arrays); every op must be one of `PROGRAM_OPS`."""
    unknown = sorted({op["op"] for op in program["ops"]} - set(PROGRAM_OPS))
    if unknown:
        raise TinySRError(f"{name}: the web engine has no {', '.join(unknown)}")
    used = {op[key] for op in program["ops"] for key in ("weight", "bias", "value") if key in op}
    tensors = {k: {"shape": list(np.shape(arrays[k])), "data": b64(arrays[k])} for k in sorted(used)}
    return {**_header(name, scale, params, radius, "program"),
            "program": {"input": program["input"], "output": program["output"], "ops": list(program["ops"])},
            "tensors": tensors}
