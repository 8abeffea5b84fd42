"""App conventions: tinysr nets as files that chaiNNer (ONNX) and Upscayl (ncnn) load the way they load other
people's models, and what those apps do around a model, as read in their sources:

* chaiNNer-org/chaiNNer at 874b8783a28b (2026-02-14): backend/src/nodes/impl/onnx/load.py, utils.py, auto_split.py,
  backend/src/nodes/impl/image_utils.py (`to_uint8`), backend/src/nodes/impl/pytorch/convert_to_onnx_impl.py;
* upscayl/upscayl at a00d55fee90e (2026-03-27): electron/utils/get-models.ts, electron/commands/
  custom-models-select.ts, common/check-model-scale.ts, electron/utils/get-arguments.ts;
* upscayl/upscayl-ncnn at d02fa88e078e (2025-12-07): src/main.cpp, src/realesrgan.cpp, src/realesrgan_preproc.comp,
  src/realesrgan_postproc.comp.

chaiNNer ("Load Model" and "Upscale Image" of its ONNX package):
1. the first input's shape gives the layout: dim 1 an int <= 4 is BCHW with that many channels; a float16 input
   gets a float16 image, anything else float32;
2. the scale: the input is fixed to 16x16 and ONNX's strict shape inference run; when the output size divides, that
   is the scale, and every image is then padded to a multiple of 16 (NumPy "reflect", bottom and right) and the
   padding cut from the output. A graph whose sizes do not infer gets no scale (and no padding);
3. an image is float32 0..1 (held as BGR, flipped to RGB for the model and back), NCHW with a batch of 1; the output
   is clipped to 0..1 and saved as round(x * 255), half to even. Images up to 256 pixels a side run whole (the
   default tile size); larger ones run as tiles with 16 pixels of overlap, blended.

Upscayl (its custom-models folder, run by upscayl-ncnn):
1. the folder is named `models` and holds NAME.param / NAME.bin pairs: each NAME is one model;
2. the scale comes from NAME: the app takes x2/2x -> 2, x3/3x -> 3, else 4 (lower-cased); upscayl-ncnn (Linux and
   macOS builds) the first of x1/1x, x2/2x, x3/3x, x4/4x, x8/8x, x16/16x it finds, else 4 (its Windows build reads
   no name: 4 unless -z is given). `-s` is a resize of the output, not the model's scale;
3. blobs "data" in and "output" out; the image is RGB, cut into tiles of 32-200 LR pixels, each padded by 10 pixels
   on every side (real neighbours inside the image, a whole-sample mirror at its edges), times 1/255; the output
   times 255, plus 0.5, truncated and clamped to 0..255, the padding cut. On a GPU blobs are stored as fp16.

Both files hold the phone form (`tinysr.export.phone_form`) in 0..1: plain convs (PReLU between them in compact
nets), constant slices and one depth-to-space, so every size infers statically and chaiNNer finds the scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from tinysr.errors import TinySRError
from tinysr.export.phone_form import phone_net
from tinysr.models.window import receptive_radius

#: format -> the conventions it can be written in; "tinysr" (0..255, tinysr's names) is every format's own.
CONVENTIONS: dict[str, tuple[str, ...]] = {"onnx": ("tinysr", "chainner"), "ncnn": ("tinysr", "upscayl")}
#: chaiNNer: the side every image is padded to a multiple of, once the scale is found (load.py `_detect_size_req`).
CHAINNER_MULTIPLE = 16
#: Upscayl: the blob names upscayl-ncnn feeds and reads (realesrgan.cpp), and the padding around each tile.
UPSCAYL_BLOBS = {"in0": "data", "out0": "output"}
UPSCAYL_PREPADDING = 10
_UPSCAYL_APP_TAGS = ((2, ("x2", "2x")), (3, ("x3", "3x")))  # common/check-model-scale.ts; else 4
_UPSCAYL_NCNN_TAGS = ((1, ("x1", "1x")), (2, ("x2", "2x")), (3, ("x3", "3x")), (4, ("x4", "4x")),
                      (8, ("x8", "8x")), (16, ("x16", "16x")))  # src/main.cpp, in this order; else 4


def check_convention(fmt: str, convention: str) -> None:
    """One-line TinySRError unless format `fmt` can be written in `convention`."""
    if convention in CONVENTIONS.get(fmt, ("tinysr",)):
        return
    formats = [f for f, names in CONVENTIONS.items() if convention in names]
    if not formats:
        raise TinySRError(f"unknown --convention {convention!r}; choose tinysr, chainner or upscayl")
    raise TinySRError(f"--convention {convention} is for --format {' or '.join(formats)}, not {fmt}")


class UnitRange(nn.Module):
    """A 0..255 network as the apps call it: NCHW float32 RGB 0..1 in and out, not clamped."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 255.0) / 255.0


def app_net(model: nn.Module) -> nn.Module:
    """The module both app conventions export: `model`'s phone form in 0..1 (see the module docstring)."""
    return UnitRange(phone_net(model)).eval()


def check_app_file(convention: str, path: str | os.PathLike, model: nn.Module) -> None:
    """One-line TinySRError, before anything is written, when the app of `convention` could not use `model` at
    `path` as it is named (Upscayl: `check_upscayl`; the other conventions have no such rule)."""
    if convention == "upscayl":
        check_upscayl(path, model)


# ---------------------------------------------------------------------------------------------------- Upscayl


def upscayl_scales(name: str) -> tuple[int, int]:
    """(the app's, upscayl-ncnn's) reading of a model's scale from its NAME (rule 2 of the module docstring)."""
    app = next((s for s, tags in _UPSCAYL_APP_TAGS if any(t in name.lower() for t in tags)), 4)
    engine = next((s for s, tags in _UPSCAYL_NCNN_TAGS if any(t in name for t in tags)), 4)
    return app, engine


def check_upscayl(path: str | os.PathLike, model: nn.Module) -> None:
    """One-line TinySRError unless Upscayl reads `model`'s scale from the name of `path` (NAME.param), and its
    10-pixel tile padding covers the net's receptive radius (so that its tiles join without seams)."""
    name, scale = Path(path).stem, model.config.scale
    if upscayl_scales(name) != (scale, scale):
        app, engine = upscayl_scales(name)
        hint = f"{name}-x{scale}" if upscayl_scales(f"{name}-x{scale}") == (scale, scale) else f"tinysr-x{scale}"
        raise TinySRError(f"{path}: Upscayl reads the scale from the name, and {name!r} reads as x{app} (app) / "
                          f"x{engine} (upscayl-ncnn), but the model is x{scale}; name it e.g. {hint}.param")
    radius = receptive_radius(model)
    if radius > UPSCAYL_PREPADDING:
        raise TinySRError(f"{path}: the net sees {radius} LR pixels around each output, more than the "
                          f"{UPSCAYL_PREPADDING} Upscayl pads its tiles with; its tiles would show seams")
