"""ONNX export of any tinysr network, and an ONNX Runtime window function for tiled inference.

The graph takes `lr` (N x 3 x H x W float32 RGB 0..255, H and W dynamic) and returns `sr` (N x 3 x sH x sW, same
convention, not clamped), exactly the torch forward contract. The model config travels in `metadata_props`
(`tinysr_config`, JSON), with `tinysr_scale` and `tinysr_convention`, so a file is self-describing.

The tiny family is exported collapsed. Its MATLAB bicubic anchor (`tinysr.models.ops.bicubic_upsample`: a
symmetric pad of 2 and periodic 5-tap sums) traces to plain Gather/Slice/Mul/Add ops with dynamic shapes, so the
graph is the torch forward itself, borders included, for images of at least 2x2 pixels. (An earlier export swapped
in ONNX `Resize`; ORT's cubic Resize made the graph 5x slower on CPU.)

`convention="chainner"` (`tinysr export --convention chainner`) writes the file chaiNNer loads as it loads other
people's models (`tinysr.export.apps`): input `input` (N x 3 x H x W float32 RGB 0..1), output `output` (0..1, not
clamped), H and W dynamic, the phone form's plain ops (Conv, Slice, Concat, Add, DepthToSpace), whose sizes ONNX's
shape inference resolves, so that chaiNNer finds the scale; `tinysr_convention` says so.

Export uses torch's TorchScript-based exporter (`dynamo=False`): the default `torch.export` exporter needs the
`onnxscript` package, which tinysr does not depend on; the legacy exporter handles these conv/shuffle nets fully.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.export.apps import app_net, check_convention
from tinysr.infer.tiling import WindowFn
from tinysr.models import config_to_dict, deployed

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "lr", "sr"
CONVENTION = "NCHW float32 RGB 0..255 in and out, output not clamped"
#: --convention chainner: the names chaiNNer's own PyTorch -> ONNX converter gives (convert_to_onnx_impl.py)
CHAINNER_NAMES = ("input", "output")
CHAINNER_CONVENTION = "chaiNNer's: NCHW float32 RGB 0..1 in and out, output not clamped"


def _exportable(model: nn.Module) -> nn.Module:
    """The module to trace: the deployed network (a re-parameterised tiny net folded into plain convs)."""
    return deployed(model).eval().cpu()


def _trace_to_onnx(model: nn.Module, *, opset: int, names: tuple[str, str] = (INPUT_NAME, OUTPUT_NAME),
                   peak: float = 255.0) -> bytes:
    """The legacy exporter's ONNX bytes, with batch, height and width dynamic (`peak`: the input's white)."""
    buffer = io.BytesIO()
    dummy = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * peak  # leaves the global RNG be
    source, target = names
    dynamic = {source: {0: "batch", 2: "height", 3: "width"}, target: {0: "batch", 2: "sr_height", 3: "sr_width"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter, chosen on purpose (see above)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks and constant matrices: expected
        torch.onnx.export(model.eval(), (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[source], output_names=[target], dynamic_axes=dynamic)
    return buffer.getvalue()


def _traced(model: nn.Module, *, opset: int, convention: str) -> tuple[bytes, str]:
    """(ONNX bytes, the `tinysr_convention` text) of `model` in `convention` ("tinysr" or "chainner")."""
    check_convention("onnx", convention)
    if convention == "chainner":
        return _trace_to_onnx(app_net(model), opset=opset, names=CHAINNER_NAMES, peak=1.0), CHAINNER_CONVENTION
    return _trace_to_onnx(_exportable(model), opset=opset), CONVENTION


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = ONNX_OPSET,
                convention: str = "tinysr") -> None:
    """Write `model` as an ONNX file (opset >= 17, dynamic H/W, config in metadata_props), atomically; `convention`
    "chainner" writes chaiNNer's 0..1 file (see the module docstring)."""
    import onnx

    if opset < ONNX_OPSET:
        raise TinySRError(f"--opset must be >= {ONNX_OPSET}, got {opset}")
    graph, text = _traced(model, opset=opset, convention=convention)
    proto = onnx.load_from_string(graph)
    metadata = {"tinysr_config": json.dumps(config_to_dict(model.config)),
                "tinysr_scale": str(model.config.scale), "tinysr_convention": text}
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.metadata_props.add(key=DIGEST, value=graph_digest(proto))
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())


#: metadata_props key of the graph's sha256 (`graph_digest`), checked by `load_checked` before a session starts.
DIGEST = "tinysr_sha256"


def graph_digest(proto: Any) -> str:
    """sha256 of an ONNX model's graph (nodes, weights, inputs, outputs), as serialised by protobuf."""
    return hashlib.sha256(proto.graph.SerializeToString(deterministic=True)).hexdigest()


def load_checked(path: str | os.PathLike) -> Any:
    """The ONNX model at `path`; a truncated or damaged file, or one whose graph does not match its recorded
    digest, is a one-line TinySRError naming it (files without a digest load unchecked)."""
    import onnx

    if not Path(path).is_file():
        raise TinySRError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted types on a bad file
        raise TinySRError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    recorded = {p.key: p.value for p in proto.metadata_props}.get(DIGEST)
    if recorded is not None and recorded != graph_digest(proto):
        raise TinySRError(f"{path}: content does not match its recorded sha256 (the file is damaged)")
    return proto


def read_onnx_config(path: str | os.PathLike) -> dict[str, Any]:
    """The tinysr config stored in an exported ONNX file's metadata."""
    props = {p.key: p.value for p in load_checked(path).metadata_props}
    if "tinysr_config" not in props:
        raise TinySRError(f"{path}: an ONNX file without tinysr metadata (tinysr_config)")
    return json.loads(props["tinysr_config"])


def onnx_session(path: str | os.PathLike, *, threads: int | None = None):
    """An ONNX Runtime CPU session for an exported file (`threads`: intra-op threads, None = ORT's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    proto = load_checked(path)
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def onnx_window_fn(session) -> WindowFn:
    """The `run_tiled` window function of an ONNX Runtime session: HWC uint8 -> HWC float32 0..255."""

    def run(window: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(window.transpose(2, 0, 1)[None], dtype=np.float32)
        (sr,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return sr[0].transpose(1, 2, 0)

    return run
