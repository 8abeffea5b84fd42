"""ONNX export of any tinysr network, and an ONNX Runtime window function for tiled inference.

The graph takes `lr` (N x 3 x H x W float32 RGB 0..255, H and W dynamic) and returns `sr` (N x 3 x sH x sW, same
convention, not clamped), exactly the torch forward contract. The model config travels in `metadata_props`
(`tinysr_config`, JSON), with `tinysr_scale` and `tinysr_convention`, so a file is self-describing.

The tiny family is exported collapsed, with its MATLAB bicubic upsampler (a matrix product sized at trace time)
replaced by ONNX `Resize` (mode cubic, cubic_coeff_a -0.5, half_pixel, exclude_outside 0), which equals MATLAB's
bicubic UPscaling except at the borders (ONNX clamps edge indices, MATLAB mirrors them). So the graph pads 2 LR pixels
symmetrically (MATLAB's half-sample mirror: the reach of 4 taps) before the Resize and crops them after: exact up to
float32 rounding for images of at least 2x2 pixels.

Export uses torch's TorchScript-based exporter (`dynamo=False`): the default `torch.export` exporter needs the
`onnxscript` package, which tinysr does not depend on; the legacy exporter handles these conv/shuffle nets fully.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinysr.checkpoint import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.models import config_to_dict, deployed
from tinysr.models.tiny import TinySR
from tinysr.tiling import WindowFn

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "lr", "sr"
CONVENTION = "NCHW float32 RGB 0..255 in and out, output not clamped"


def _symmetric_pad2(x: torch.Tensor) -> torch.Tensor:
    """NCHW -> N x C x (H+4) x (W+4), mirrored MATLAB-style (x1 x0 | x0 x1 ... xn-1 | xn-1 xn-2); as Gather ops."""
    flip = torch.tensor([1, 0])
    for dim in (3, 2):
        x = torch.cat([x.narrow(dim, 0, 2).index_select(dim, flip), x,
                       x.narrow(dim, x.shape[dim] - 2, 2).index_select(dim, flip)], dim=dim)
    return x


class _OnnxTinySR(TinySR):
    """A collapsed tiny net whose upsampler traces to ONNX Resize (see the module docstring); the Resize attributes
    are set to MATLAB's kernel by `_matlab_cubic` after tracing (torch's own bicubic is Keys a = -0.75)."""

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        up = F.interpolate(_symmetric_pad2(x), scale_factor=s, mode="bicubic", align_corners=False)
        return up[:, :, 2 * s:up.shape[2] - 2 * s, 2 * s:up.shape[3] - 2 * s]


def _exportable(model: nn.Module) -> nn.Module:
    """The module to trace: the model itself, or a tiny net collapsed into `_OnnxTinySR`."""
    if getattr(model.config, "family", None) != "tiny":
        return model
    collapsed = deployed(model)
    onnx_model = _OnnxTinySR(collapsed.config)
    onnx_model.load_state_dict(collapsed.state_dict())
    return onnx_model.eval()


def _matlab_cubic(proto) -> None:
    """Set every Resize node to MATLAB's upscaling kernel: Keys a = -0.5, half-pixel centres, no tap exclusion."""
    import onnx

    for node in proto.graph.node:
        if node.op_type != "Resize":
            continue
        attrs = {a.name: a for a in node.attribute}
        for name, value in (("cubic_coeff_a", -0.5), ("coordinate_transformation_mode", "half_pixel"),
                            ("exclude_outside", 0), ("mode", "cubic")):
            if name in attrs:
                node.attribute.remove(attrs[name])
            node.attribute.append(onnx.helper.make_attribute(name, value))


def _trace_to_onnx(model: nn.Module, *, opset: int) -> bytes:
    """The legacy exporter's ONNX bytes, with batch, height and width dynamic."""
    buffer = io.BytesIO()
    dummy = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255  # leaves the global RNG be
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
               OUTPUT_NAME: {0: "batch", 2: "sr_height", 3: "sr_width"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter, chosen on purpose (see above)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks and constant matrices: expected
        torch.onnx.export(model.eval().cpu(), (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic)
    return buffer.getvalue()


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> None:
    """Write `model` as an ONNX file (opset >= 17, dynamic H/W, config in metadata_props), atomically."""
    import onnx

    if opset < ONNX_OPSET:
        raise TinySRError(f"--opset must be >= {ONNX_OPSET}, got {opset}")
    proto = onnx.load_from_string(_trace_to_onnx(_exportable(model), opset=opset))
    _matlab_cubic(proto)
    metadata = {"tinysr_config": json.dumps(config_to_dict(model.config)),
                "tinysr_scale": str(model.config.scale), "tinysr_convention": CONVENTION}
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())


def read_onnx_config(path: str | os.PathLike) -> dict[str, Any]:
    """The tinysr config stored in an exported ONNX file's metadata."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted types on a bad file
        raise TinySRError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if "tinysr_config" not in props:
        raise TinySRError(f"{path}: an ONNX file without tinysr metadata (tinysr_config)")
    return json.loads(props["tinysr_config"])


def onnx_session(path: str | os.PathLike, *, threads: int | None = None):
    """An ONNX Runtime CPU session for an exported file (`threads`: intra-op threads, None = ORT's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if not Path(path).is_file():
        raise TinySRError(f"{path}: no such ONNX file")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_window_fn(session) -> WindowFn:
    """The `run_tiled` window function of an ONNX Runtime session: HWC uint8 -> HWC float32 0..255."""

    def run(window: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(window.transpose(2, 0, 1)[None], dtype=np.float32)
        (sr,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return sr[0].transpose(1, 2, 0)

    return run
