"""ncnn export: the phone form (`tinysr.export.phone_form`) traced with torch.jit and converted by pnnx.

`tinysr export --format ncnn NAME.param` writes NAME.param (the layer list, text) and NAME.bin (the weights, fp32)
beside it. The graph's blobs: input "in0", output "out0", both CHW float32 RGB 0..255 (ncnn's Mat, no batch axis),
the output not clamped (round half to even and clip, as `tinysr.upscale` does). Sizes are dynamic (pnnx is given
two input shapes), any H, W >= 2. The layers are ncnn's own: Convolution (with fused ReLU), Crop and Concat (the
anchor's symmetric pad), BinaryOp (add), PixelShuffle (torch's channel order, mode 0), PReLU / ReLU.

`convention="upscayl"` (`tinysr export --convention upscayl models/NAME.param`) writes the pair Upscayl loads
from its custom-models folder (`tinysr.export.apps`): blobs "data" in and "output" out, CHW float32 RGB 0..1 (the
app multiplies by 1/255 before and by 255 after), and NAME must carry the model's scale as Upscayl reads it (x2 or
2x, x3 or 3x; x4 or none for x4), or the export is refused.

Weights are stored in fp32 (`fp16=0`). ncnn computes in fp16 by default where the CPU has it (ARM phones): for the
tinysr parity rule set `net.opt.use_fp16_storage = use_fp16_packed = use_fp16_arithmetic = False`, as
`ncnn_net` does.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinysr.atomic import atomic_write_bytes
from tinysr.errors import TinySRError
from tinysr.export.apps import UPSCAYL_BLOBS, app_net, check_convention, check_upscayl
from tinysr.export.phone_form import phone_net

INPUT_NAME, OUTPUT_NAME = "in0", "out0"
TRACE_SHAPES = ((1, 3, 32, 32), (1, 3, 24, 40))  # two sizes, so that pnnx keeps H and W dynamic


def bin_path(param: str | os.PathLike) -> Path:
    """The weights file that goes with a .param file: the same name with the suffix .bin."""
    return Path(param).with_suffix(".bin")


def _trace(module: nn.Module, path: Path, *, peak: float = 255.0) -> None:
    """torch.jit.trace of a phone-form module, saved for pnnx (`peak`: the input's white; an explicit generator
    leaves the global RNG be)."""
    dummy = torch.rand(TRACE_SHAPES[0], generator=torch.Generator().manual_seed(0)) * peak
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript on purpose: it is what pnnx reads
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.jit.trace(module, (dummy,)).save(str(path))


def _shape_arg(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]f32"


def convert_with_pnnx(pt: Path, workdir: Path) -> tuple[Path, Path]:
    """Run the pnnx converter on a traced module; returns the (.param, .bin) it wrote into `workdir`."""
    import pnnx

    param, weights = workdir / "model.ncnn.param", workdir / "model.ncnn.bin"
    command = [pnnx.EXEC_PATH, str(pt), f"inputshape={_shape_arg(TRACE_SHAPES[0])}",
               f"inputshape2={_shape_arg(TRACE_SHAPES[1])}", "device=cpu", "fp16=0",
               f"ncnnparam={param}", f"ncnnbin={weights}", f"ncnnpy={workdir / 'model_ncnn.py'}",
               f"pnnxparam={workdir / 'model.pnnx.param'}", f"pnnxbin={workdir / 'model.pnnx.bin'}",
               f"pnnxpy={workdir / 'model_pnnx.py'}", f"pnnxonnx={workdir / 'model.pnnx.onnx'}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if done.returncode != 0 or not param.is_file() or not weights.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise TinySRError(f"pnnx failed (exit {done.returncode}): {' | '.join(tail)}")
    return param, weights


def check_ncnn_layers(param_text: str) -> None:
    """Refuse a conversion that left torch ops in the graph (pnnx writes those it cannot map under torch names)."""
    layers = [line.split()[0] for line in param_text.splitlines()[2:] if line.strip()]
    foreign = sorted({t for t in layers if "." in t})
    if foreign:
        raise TinySRError(f"pnnx left ops ncnn cannot run: {', '.join(foreign)}")


def rename_blobs(param_text: str, names: dict[str, str]) -> str:
    """The .param text with blobs (and Input layers) renamed old -> new. Each layer line reads: type, name, bottom
    count, top count, the bottoms, the tops, then key=value params; tokens are rejoined by single spaces."""
    lines = param_text.splitlines()
    taken = {b for line in lines[2:] if line.split() for b in _blobs(line.split())}
    clash = sorted(taken & (set(names.values()) - set(names)))
    if clash or not set(names) <= taken:
        raise TinySRError(f"cannot rename the ncnn blobs {sorted(names)} to {sorted(names.values())}: "
                          f"{'already used: ' + ', '.join(clash) if clash else 'not all in the graph'}")
    renamed = lines[:2]
    for line in lines[2:]:
        fields = line.split()
        if fields:
            n_blobs = len(_blobs(fields))
            fields[4:4 + n_blobs] = [names.get(b, b) for b in fields[4:4 + n_blobs]]
            if fields[0] == "Input":
                fields[1] = names.get(fields[1], fields[1])
            renamed.append(" ".join(fields))
    return "\n".join(renamed) + "\n"


def _blobs(fields: list[str]) -> list[str]:
    return fields[4:4 + int(fields[2]) + int(fields[3])]


def export_ncnn(model: nn.Module, path: str | os.PathLike, *, convention: str = "tinysr") -> None:
    """Write `model` as ncnn `path` (NAME.param) and its NAME.bin (see the module docstring), each atomically;
    `convention` "upscayl" writes Upscayl's 0..1 pair with its blob names."""
    if Path(path).suffix != ".param":
        raise TinySRError(f"{path}: an ncnn export is written as NAME.param and NAME.bin; give a .param name")
    check_convention("ncnn", convention)
    if convention == "upscayl":
        check_upscayl(path, model)
    module, peak = (app_net(model), 1.0) if convention == "upscayl" else (phone_net(model), 255.0)
    with tempfile.TemporaryDirectory(prefix="tinysr-ncnn-") as tmp:
        _trace(module, Path(tmp) / "model.pt", peak=peak)
        param, weights = convert_with_pnnx(Path(tmp) / "model.pt", Path(tmp))
        text = param.read_text()
        check_ncnn_layers(text)
        if convention == "upscayl":
            text = rename_blobs(text, UPSCAYL_BLOBS)
        atomic_write_bytes(bin_path(path), weights.read_bytes())
        atomic_write_bytes(path, text.encode())


def ncnn_net(param: str | os.PathLike, *, threads: int = 1):
    """An `ncnn.Net` loaded from an export, fp32 throughout (the parity rule needs it; see the module docstring)."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(bin_path(param))) != 0:
        raise TinySRError(f"{param}: ncnn could not load it (and its .bin)")
    return net


def run_ncnn(net, lr: np.ndarray) -> np.ndarray:
    """HWC RGB uint8 (H, W >= 2) -> HWC float32 0..255 at scale x, unrounded."""
    import ncnn

    chw = np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32)
    # ncnn.Mat(array) borrows the array with cstep = H * W, which ncnn's layers misread unless H * W is a multiple
    # of 4 (wrong borders, tested); clone() copies it into ncnn's own 16-byte-aligned channels
    extractor = net.create_extractor()
    extractor.input(INPUT_NAME, ncnn.Mat(chw).clone())
    status, out = extractor.extract(OUTPUT_NAME)
    if status != 0:
        raise TinySRError(f"ncnn extract failed ({status})")
    return np.array(out, copy=True).transpose(1, 2, 0)
