"""LiteRT (TensorFlow Lite) export: the phone form (`tinysr.export.phone_form`) written as a .tflite flatbuffer.

The official converter needs TensorFlow; this writes the file directly with the `flatbuffers` runtime, following
LiteRT's published schema (schema.fbs, version 3: the table slots are the field order there; tests/test_phone_export.py
reads every file back with the `tflite` package's generated classes and runs it in the `ai-edge-litert`
interpreter).

The graph: input "lr", NHWC float32 1 x H x W x 3 RGB 0..255; output "sr", 1 x sH x sW x 3, same range, not
clamped (round half to even and clip, as `tinysr.upscale` does). H and W are dynamic (shape_signature
1 x -1 x -1 x 3; the stored shape is 1 x `DEFAULT_SIZE` x `DEFAULT_SIZE` x 3): call
`interpreter.resize_tensor_input(index, [1, H, W, 3])` then `allocate_tensors()` for another size (H, W >= 2).
Only builtin ops: CONV_2D (weights OHWI, optional fused RELU), DEPTH_TO_SPACE, ADD, MIRROR_PAD (SYMMETRIC),
PRELU, LEAKY_RELU; every tensor has rank <= 4.

TF's DEPTH_TO_SPACE reads channel (i * f + j) * C + c where torch's pixel_shuffle reads c * f * f + i * f + j, so the
output channels of whatever feeds a depth-to-space (convs, through adds) are permuted once here, in the weights.
The model config travels as metadata "tinysr_config" (JSON).
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import numpy as np
from torch import nn

from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.export.phone_form import Op, phone_form
from tinysr.models import config_to_dict

DEFAULT_SIZE = 64
INPUT_NAME, OUTPUT_NAME = "lr", "sr"
SCHEMA_VERSION = 3

#: schema.fbs enums used here (BuiltinOperator, BuiltinOptions, TensorType, Padding, ActivationFunctionType,
#: MirrorPadMode); the test checks them against the `tflite` package's generated enums.
OPCODES = {"ADD": 0, "CONV_2D": 3, "DEPTH_TO_SPACE": 5, "PRELU": 54, "LEAKY_RELU": 98, "MIRROR_PAD": 100}
OPTIONS = {"Conv2DOptions": 1, "AddOptions": 11, "LeakyReluOptions": 75, "MirrorPadOptions": 77,
           "DepthToSpaceOptions": 94}
FLOAT32, INT32 = 0, 2
SAME, VALID = 0, 1
RELU, SYMMETRIC = 1, 1


# ---------------------------------------------------------------------------------------------------- step 1: DCR


def dcr_permutation(channels: int, factor: int) -> np.ndarray:
    """perm with new[j] = old[perm[j]]: torch's pixel-shuffle channel order (c * f * f + k) to TF's (k * C + c)."""
    return np.arange(channels).reshape(channels // (factor * factor), factor * factor).T.reshape(-1)


def _permute_output(ops: dict[str, Op], name: str, perm: np.ndarray) -> None:
    """Permute the channels of tensor `name` by changing the weights of the ops that make it (in place)."""
    op = ops.get(name)
    if op is None:
        raise TinySRError(f"tflite: cannot reorder the channels of the input {name!r} for DEPTH_TO_SPACE")
    if op["op"] == "conv":
        op["weight"], op["bias"] = op["weight"][perm], op["bias"][perm]
    elif op["op"] == "add_channels":
        op["value"] = op["value"][perm]
    elif op["op"] == "prelu":
        op["slopes"] = op["slopes"][perm]
    elif op["op"] not in ("add", "leaky_relu"):
        raise TinySRError(f"tflite: cannot reorder the channels of a {op['op']!r} output for DEPTH_TO_SPACE")
    if op["op"] != "conv":
        for src in op["in"]:
            _permute_output(ops, src, perm)


def tf_order(form: list[Op]) -> list[Op]:
    """A copy of a phone form whose depth-to-space inputs are in TF's channel order (see the module docstring).
    Each tensor reordered must feed only the chain that leads to its depth-to-space."""
    form = copy.deepcopy(form)
    consumers: dict[str, int] = {}
    for op in form:
        for src in op["in"]:
            consumers[src] = consumers.get(src, 0) + 1
    by_out = {op["out"]: op for op in form}
    for op in form:
        if op["op"] == "depth_to_space":
            shared = sorted(n for n in _producers(by_out, op["in"][0]) if consumers.get(n, 0) > 1)
            if shared:
                raise TinySRError(f"tflite: {shared} feed DEPTH_TO_SPACE and other ops; cannot reorder them")
            _permute_output(by_out, op["in"][0], dcr_permutation(_channels(form, op["in"][0]), op["factor"]))
    return form


def _producers(by_out: dict[str, Op], name: str) -> set[str]:
    op = by_out.get(name)
    if op is None or op["op"] == "conv":
        return {name}
    return {name}.union(*(_producers(by_out, src) for src in op["in"]))


def _channels(form: list[Op], name: str) -> int:
    """Channels of tensor `name` in a phone form (3 for the input)."""
    channels = {INPUT_NAME: 3}
    for op in form:
        x = channels[op["in"][0]]
        channels[op["out"]] = {"conv": lambda: op["weight"].shape[0],
                               "depth_to_space": lambda: x // op["factor"] ** 2}.get(op["op"], lambda: x)()
    return channels[name]


# ---------------------------------------------------------------------------------------------------- step 2: graph


class _Graph:
    """The tables of one subgraph, as plain Python values, before serialisation."""

    def __init__(self) -> None:
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty buffer of every non-constant tensor
        self.tensors: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.opcodes: list[int] = []
        self.operators: list[dict[str, Any]] = []

    def tensor(self, name: str, shape: tuple[int, ...], *, dynamic: bool = False, data: np.ndarray | None = None,
               dtype: int = FLOAT32) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buffer = len(self.buffers) - 1
        signature = [-1 if dynamic and i in (1, 2) else d for i, d in enumerate(shape)]
        self.tensors.append({"name": name, "shape": list(shape), "signature": signature, "type": dtype,
                             "buffer": buffer})
        self.index[name] = len(self.tensors) - 1
        return self.index[name]

    def constant(self, name: str, array: np.ndarray) -> int:
        dtype = INT32 if array.dtype == np.int32 else FLOAT32
        return self.tensor(name, array.shape, data=array, dtype=dtype)

    def operator(self, code: str, inputs: list[int], outputs: list[int], options: tuple[str, dict] | None = None):
        if OPCODES[code] not in self.opcodes:
            self.opcodes.append(OPCODES[code])
        self.operators.append({"opcode": self.opcodes.index(OPCODES[code]), "inputs": inputs, "outputs": outputs,
                               "options": options})


def _emit(graph: _Graph, op: Op, shapes: dict[str, tuple[int, int, int]]) -> None:
    """Add one phone-form op (NCHW semantics) to `graph` as NHWC LiteRT ops; records the output's (H, W, C)."""
    h, w, c = shapes[op["in"][0]]
    x = graph.index[op["in"][0]]
    kind, name = op["op"], op["out"]
    if kind == "conv":
        weight = op["weight"].transpose(0, 2, 3, 1)  # OIHW -> OHWI
        k = weight.shape[1] - 1 if op["pad"] == "none" else 0
        shapes[name] = (h - k, w - k, weight.shape[0])
        inputs = [x, graph.constant(f"{name}.weight", weight), graph.constant(f"{name}.bias", op["bias"])]
        options = {"padding": SAME if op["pad"] == "zeros" else VALID, "act": RELU if op["act"] == "relu" else 0}
        graph.operator("CONV_2D", inputs, [_out(graph, name, shapes)], ("Conv2DOptions", options))
    elif kind == "symmetric_pad":
        p = op["pad"]
        shapes[name] = (h + 2 * p, w + 2 * p, c)
        pads = graph.constant(f"{name}.paddings", np.array([[0, 0], [p, p], [p, p], [0, 0]], dtype=np.int32))
        graph.operator("MIRROR_PAD", [x, pads], [_out(graph, name, shapes)], ("MirrorPadOptions", {}))
    elif kind == "depth_to_space":
        f = op["factor"]
        shapes[name] = (h * f, w * f, c // (f * f))
        graph.operator("DEPTH_TO_SPACE", [x], [_out(graph, name, shapes)], ("DepthToSpaceOptions", {"block": f}))
    elif kind in ("add", "add_channels"):
        shapes[name] = (h, w, c)
        other = (graph.index[op["in"][1]] if kind == "add"
                 else graph.constant(f"{name}.value", op["value"].reshape(1, 1, 1, -1)))
        graph.operator("ADD", [x, other], [_out(graph, name, shapes)], ("AddOptions", {}))
    elif kind == "prelu":
        shapes[name] = (h, w, c)
        alpha = graph.constant(f"{name}.alpha", op["slopes"].reshape(1, 1, -1))
        graph.operator("PRELU", [x, alpha], [_out(graph, name, shapes)])
    elif kind == "leaky_relu":
        shapes[name] = (h, w, c)
        graph.operator("LEAKY_RELU", [x], [_out(graph, name, shapes)], ("LeakyReluOptions", {"alpha": op["slope"]}))
    else:
        raise TinySRError(f"tflite: no LiteRT op for phone-form op {kind!r}")


def _out(graph: _Graph, name: str, shapes: dict[str, tuple[int, int, int]]) -> int:
    return graph.tensor(name, (1, *shapes[name]), dynamic=True)


def build_graph(form: list[Op]) -> _Graph:
    """The LiteRT tables of a phone form: input "lr", ops in order, the last op's output renamed "sr"."""
    form = tf_order(form)
    form[-1] = {**form[-1], "out": OUTPUT_NAME}
    graph = _Graph()
    shapes = {INPUT_NAME: (DEFAULT_SIZE, DEFAULT_SIZE, 3)}
    graph.tensor(INPUT_NAME, (1, *shapes[INPUT_NAME]), dynamic=True)
    for op in form:
        _emit(graph, op, shapes)
    return graph


# ---------------------------------------------------------------------------------------------------- step 3: bytes


def _options_table(b, kind: str, values: dict) -> int:
    """One builtin-options table (schema.fbs field order = slot numbers)."""
    if kind == "Conv2DOptions":
        b.StartObject(7)
        b.PrependInt8Slot(0, values["padding"], 0)
        b.PrependInt32Slot(1, 1, 0)  # stride_w
        b.PrependInt32Slot(2, 1, 0)  # stride_h
        b.PrependInt8Slot(3, values["act"], 0)
    elif kind == "DepthToSpaceOptions":
        b.StartObject(1)
        b.PrependInt32Slot(0, values["block"], 0)
    elif kind == "MirrorPadOptions":
        b.StartObject(1)
        b.PrependInt8Slot(0, SYMMETRIC, 0)
    elif kind == "LeakyReluOptions":
        b.StartObject(1)
        b.PrependFloat32Slot(0, float(values["alpha"]), 0.0)
    else:  # AddOptions: no fused activation
        b.StartObject(2)
    return b.EndObject()


def _vector(b, values: list[int], *, offsets: bool = False) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependUOffsetTRelative(v) if offsets else b.PrependInt32(v)
    return b.EndVector()


def _bytes(b, data: bytes) -> int:
    """A [ubyte] vector aligned to 16 bytes (schema: `data:[ubyte] (force_align: 16)`)."""
    b.StartVector(1, len(data), 16)
    b.head -= len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    b.vectorNumElems = len(data)
    return b.EndVector()


def _table(b, fields: list[tuple[str, int, Any]]) -> int:
    """A table from (kind, slot, value) with kind "offset", "int32", "uint32", "int8" or "uint8"."""
    b.StartObject(1 + max(slot for _, slot, _ in fields))
    for kind, slot, value in fields:
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        else:
            getattr(b, {"int32": "PrependInt32Slot", "uint32": "PrependUint32Slot", "int8": "PrependInt8Slot",
                        "uint8": "PrependUint8Slot"}[kind])(slot, value, 0)
    return b.EndObject()


def serialize(graph: _Graph, *, metadata: dict[str, str]) -> bytes:
    """The .tflite bytes (file identifier "TFL3") of `graph`, with string `metadata` in extra buffers."""
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)
    buffers = list(graph.buffers) + [value.encode() for value in metadata.values()]
    buffer_offsets = [_table(b, [("offset", 0, _bytes(b, data))]) if data else _table(b, [("int8", 1, 0)])
                      for data in buffers]
    tensors = []
    for t in graph.tensors:
        name, shape, signature = b.CreateString(t["name"]), _vector(b, t["shape"]), _vector(b, t["signature"])
        tensors.append(_table(b, [("offset", 0, shape), ("int8", 1, t["type"]), ("uint32", 2, t["buffer"]),
                                  ("offset", 3, name), ("offset", 7, signature)]))
    operators = []
    for op in graph.operators:
        fields = [("uint32", 0, op["opcode"]), ("offset", 1, _vector(b, op["inputs"])),
                  ("offset", 2, _vector(b, op["outputs"]))]
        if op["options"] is not None:
            kind, values = op["options"]
            fields += [("uint8", 3, OPTIONS[kind]), ("offset", 4, _options_table(b, kind, values))]
        operators.append(_table(b, fields))
    codes = [_table(b, [("int8", 0, code), ("int32", 2, 1), ("int32", 3, code)]) for code in graph.opcodes]
    subgraph = _table(b, [("offset", 0, _vector(b, tensors, offsets=True)),
                          ("offset", 1, _vector(b, [graph.index[INPUT_NAME]])),
                          ("offset", 2, _vector(b, [graph.index[OUTPUT_NAME]])),
                          ("offset", 3, _vector(b, operators, offsets=True)), ("offset", 4, b.CreateString("main"))])
    first = len(graph.buffers)
    entries = [_table(b, [("offset", 0, b.CreateString(key)), ("uint32", 1, first + i)])
               for i, key in enumerate(metadata)]
    description = b.CreateString("tinysr phone form")
    model = _table(b, [("uint32", 0, SCHEMA_VERSION), ("offset", 1, _vector(b, codes, offsets=True)),
                       ("offset", 2, _vector(b, [subgraph], offsets=True)), ("offset", 3, description),
                       ("offset", 4, _vector(b, buffer_offsets, offsets=True)),
                       ("offset", 6, _vector(b, entries, offsets=True))])
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


# ---------------------------------------------------------------------------------------------------- export, run


def tflite_bytes(model: nn.Module) -> bytes:
    """The .tflite file of `model` (see the module docstring)."""
    metadata = {"tinysr_config": json.dumps(config_to_dict(model.config)),
                "tinysr_convention": "NHWC float32 RGB 0..255 in and out, output not clamped"}
    return serialize(build_graph(phone_form(model)), metadata=metadata)


def export_tflite(model: nn.Module, path: str | os.PathLike) -> None:
    """Write `model` as a LiteRT .tflite file, atomically."""
    atomic_write_bytes(path, tflite_bytes(model))


def tflite_interpreter(path: str | os.PathLike, *, threads: int = 1):
    """An `ai_edge_litert` interpreter for an exported file, on its default CPU path (the XNNPACK delegate)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=threads)


def run_tflite(interpreter, lr: np.ndarray) -> np.ndarray:
    """HWC RGB uint8 (H, W >= 2) -> HWC float32 0..255 at scale x, unrounded: resize the input, allocate, invoke."""
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], [1, *lr.shape[:2], 3])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], lr[None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])[0]
