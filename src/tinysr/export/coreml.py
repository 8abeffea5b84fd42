"""Core ML export: the phone form (`tinysr.export.phone_form`) traced with torch.jit and converted by coremltools
to an ML Program (.mlpackage folder), computed in fp32.

The model: input "lr", NCHW float32 1 x 3 x H x W RGB 0..255 (H, W flexible: `ct.RangeDim` 2..4096 LR pixels,
default `DEFAULT_SIZE`); output "sr", 1 x 3 x sH x sW, same range, not clamped (round half to even and clip, as
`tinysr.upscale` does). The program's ops are conv (with relu), slice_by_index and concat (the anchor's symmetric
pad), add, pixel_shuffle (torch's channel order), and their consts; the config travels as user-defined metadata
"tinysr_config". Beside Core ML's own files the package holds `tinysr.export.destination.MARKER` (its manifest does
not list it, so Core ML never reads it): the mark that lets `tinysr export --force` replace this package.

Core ML runs only on Apple systems: on Linux the export is checked structurally (names, shapes, op types, ranks
in `coreml_program_ops`), never executed. Its numerics are those of the phone form, which the tests check against
`tinysr.upscale` in torch, LiteRT and ncnn.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.export.destination import mark, publish, staging
from tinysr.export.phone_form import phone_net
from tinysr.models import config_to_dict

INPUT_NAME, OUTPUT_NAME = "lr", "sr"
DEFAULT_SIZE = 64
MIN_SIDE, MAX_SIDE = 2, 4096  # the anchor's symmetric pad of 2 needs 2 pixels; ML Programs need a bound


def convert_to_mlprogram(model: nn.Module):
    """The coremltools MLModel (ML Program, fp32, flexible H and W) of `model`'s traced phone form."""
    import coremltools as ct

    dummy = torch.rand(1, 3, DEFAULT_SIZE, DEFAULT_SIZE, generator=torch.Generator().manual_seed(0)) * 255
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(phone_net(model), (dummy,))
    side = ct.RangeDim(lower_bound=MIN_SIDE, upper_bound=MAX_SIDE, default=DEFAULT_SIZE)
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, 3, side, side))],
                         outputs=[ct.TensorType(name=OUTPUT_NAME)], convert_to="mlprogram",
                         compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16)
    mlmodel.user_defined_metadata["tinysr_config"] = json.dumps(config_to_dict(model.config))
    mlmodel.short_description = "tinysr: NCHW float32 RGB 0..255 in and out, output not clamped"
    return mlmodel


def export_coreml(model: nn.Module, path: str | os.PathLike) -> None:
    """Write `model` as a new Core ML .mlpackage folder at `path` (which must not exist): saved under a unique
    temporary name beside it, marked as tinysr's (`destination.MARKER`: what `tinysr export --force` may replace),
    then renamed into place, so that no half-written package ever has the name."""
    path = Path(path)
    if os.path.lexists(path):
        raise TinySRError(f"{path}: exists; export_coreml writes a new package (tinysr export --force replaces one)")
    mlmodel = convert_to_mlprogram(model)
    with staging(path) as stage:
        staged = stage / path.name
        mlmodel.save(str(staged))
        mark(staged)
        publish(staged, path, replace=False, fmt="coreml")


def coreml_program_ops(spec) -> list[tuple[str, list[int]]]:
    """(op type, ranks of its outputs) of each op in an ML Program spec's main function, in order."""
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    return [(op.type, [o.type.tensorType.rank for o in op.outputs]) for op in block.operations]
