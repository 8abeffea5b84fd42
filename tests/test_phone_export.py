"""tinysr.export phone formats: the phone form, the LiteRT file's structure, ncnn's layers, Core ML's program.

Parity of LiteRT and ncnn against `tinysr.upscale` on real images is in tests/test_parity.py. Core ML cannot run
on Linux: its converted program is checked here for names, shapes, op types and ranks only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tflite
from tinysr.cli import main
from tinysr.export import tflite as litert
from tinysr.export.coreml import coreml_program_ops, export_coreml
from tinysr.export.ncnn import bin_path, export_ncnn, ncnn_net, run_ncnn
from tinysr.export.phone_form import anchor_weight, nearest_weight, phone_form, phone_net, symmetric_pad
from tinysr.infer.load import load_network
from tinysr.models.window import to_tensor
from tinysr.models.ops import bicubic_upsample

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = ("tiny-1k-x2", "tiny-1k-x3", "tiny-1k-x4", "tiny-5k-x2", "edsr-tiny-x2", "compact-5k-x2")


# ---------------------------------------------------------------------------------------------------- phone form


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_anchor_conv_is_matlab_bicubic_borders_included(scale):
    x = torch.rand(1, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 255
    padded = symmetric_pad(x, 2)
    assert torch.equal(padded, torch.from_numpy(np.pad(x.numpy(), [(0, 0)] * 2 + [(2, 2)] * 2, mode="symmetric")))
    out = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(padded, torch.from_numpy(
        anchor_weight(scale))), scale)
    assert (out - bicubic_upsample(x, scale)).abs().max() < 1e-9


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_nearest_anchor_conv_is_nearest_upsampling_exactly(scale):
    """The compact family's anchor: a 1x1 conv of 0/1 weights then the pixel shuffle, bit for bit in float32."""
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(0)) * 255
    conv = torch.nn.functional.conv2d(x, torch.from_numpy(nearest_weight(scale)).float())
    out = torch.nn.functional.pixel_shuffle(conv, scale)
    assert torch.equal(out, torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest"))


@pytest.mark.parametrize("name", MODELS)
def test_phone_form_is_the_network(name):
    model = load_network(name, scale=None)[0].to_torch()
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (13, 10, 3), dtype=np.uint8))
    with torch.no_grad():
        assert (phone_net(model)(x) - model(x)).abs().max() < 2e-3  # float32 on 0..255, reordered sums


# ---------------------------------------------------------------------------------------------------- LiteRT


def test_schema_constants_are_litert_s():
    assert all(getattr(tflite.BuiltinOperator, k) == v for k, v in litert.OPCODES.items())
    assert all(getattr(tflite.BuiltinOptions, k) == v for k, v in litert.OPTIONS.items())
    assert (litert.FLOAT32, litert.INT32) == (tflite.TensorType.FLOAT32, tflite.TensorType.INT32)
    assert (litert.SAME, litert.VALID, litert.RELU) == (tflite.Padding.SAME, tflite.Padding.VALID,
                                                         tflite.ActivationFunctionType.RELU)
    assert litert.SYMMETRIC == tflite.MirrorPadMode.SYMMETRIC


def test_dcr_permutation_turns_tf_depth_to_space_into_pixel_shuffle():
    x = np.arange(2 * 9 * 4 * 5, dtype=np.float32).reshape(1, 18, 4, 5)
    perm = litert.dcr_permutation(18, 3)
    nhwc = x[:, perm].transpose(0, 2, 3, 1).reshape(1, 4, 5, 3, 3, 2)  # TF: channel (i * 3 + j) * 2 + c
    tf = nhwc.transpose(0, 1, 3, 2, 4, 5).reshape(1, 12, 15, 2)
    assert np.array_equal(tf.transpose(0, 3, 1, 2), torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 3).numpy())


def read_tflite(path):
    """(op names, tensor ranks, input/output shape signatures, metadata names) of a .tflite file."""
    m = tflite.Model.GetRootAs(path.read_bytes(), 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = [m.OperatorCodes(i).BuiltinCode() for i in range(m.OperatorCodesLength())]
    g = m.Subgraphs(0)
    ops = [names[codes[g.Operators(i).OpcodeIndex()]] for i in range(g.OperatorsLength())]
    ranks = [g.Tensors(i).ShapeLength() for i in range(g.TensorsLength())]
    signature = [g.Tensors(g.Inputs(0)).ShapeSignatureAsNumpy().tolist(),
                 g.Tensors(g.Outputs(0)).ShapeSignatureAsNumpy().tolist()]
    metadata = [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]
    return ops, ranks, signature, metadata, m.Version()


@pytest.mark.parametrize("name", MODELS)
def test_tflite_is_builtin_ops_of_rank_at_most_4(name, tmp_path):
    model = load_network(name, scale=None)[0].to_torch()
    litert.export_tflite(model, tmp_path / "m.tflite")
    ops, ranks, signature, metadata, version = read_tflite(tmp_path / "m.tflite")
    assert version == 3 and max(ranks) <= 4 and signature == [[1, -1, -1, 3], [1, -1, -1, 3]]
    assert "tinysr_config" in metadata
    if name.startswith("tiny"):
        assert ops == ["CONV_2D"] * (1 + len(model.convs)) + ["MIRROR_PAD", "CONV_2D", "ADD", "DEPTH_TO_SPACE"]
    elif name.startswith("compact"):  # n_layers - 1 conv + PReLU pairs, the last conv, the nearest anchor's 1x1
        n_layers = model.config.n_layers
        assert ops == ["CONV_2D", "PRELU"] * (n_layers - 1) + ["CONV_2D", "CONV_2D", "ADD", "DEPTH_TO_SPACE"]
    else:
        assert ops == ["ADD", "CONV_2D", "CONV_2D", "ADD", "CONV_2D", "DEPTH_TO_SPACE", "CONV_2D"]


@pytest.mark.parametrize("name", ["tiny-1k-x3", "compact-5k-x2"])
def test_tflite_sizes_are_dynamic_and_borders_exact(name, tmp_path):
    """Two sizes through one interpreter (resize_tensor_input), down to 2 x 2; the phone form in torch agrees to
    float rounding at every pixel, so the MIRROR_PAD border (tiny), the PRELU slopes (compact) and the DCR order
    (both anchors) are right."""
    model = load_network(name, scale=None)[0].to_torch()
    scale = model.config.scale
    litert.export_tflite(model, tmp_path / "m.tflite")
    interpreter = litert.tflite_interpreter(tmp_path / "m.tflite")
    rng = np.random.default_rng(1)
    for shape in [(17, 23, 3), (2, 2, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        out = litert.run_tflite(interpreter, img)
        with torch.no_grad():
            ref = phone_net(model)(to_tensor(img))[0].permute(1, 2, 0).numpy()
        assert out.shape == ref.shape == (shape[0] * scale, shape[1] * scale, 3)
        assert np.abs(out - ref).max() < 2e-3


# ---------------------------------------------------------------------------------------------------- ncnn, Core ML


@pytest.mark.parametrize(("name", "layers", "weights"), [
    ("tiny-1k-x2", {"Crop", "Concat"}, 940 + 12 * 3 * 25),  # the symmetric pad, the 5x5 bicubic anchor
    ("compact-5k-x2", {"PReLU"}, 4887 + 12 * 3),  # the PReLU slopes, the 1x1 nearest anchor
])
def test_ncnn_layers_are_native_and_sizes_dynamic(name, layers, weights, tmp_path):
    model = load_network(name, scale=None)[0].to_torch()
    export_ncnn(model, tmp_path / "m.param")
    found = [line.split()[0] for line in (tmp_path / "m.param").read_text().splitlines()[2:]]
    assert set(found) == {"Input", "Split", "Convolution", "BinaryOp", "PixelShuffle"} | layers
    assert bin_path(tmp_path / "m.param").stat().st_size > 4 * weights  # fp32 weights
    net = ncnn_net(tmp_path / "m.param")
    for shape in [(7, 5, 3), (2, 3, 3)]:  # odd H x W: ncnn's unaligned channels (see run_ncnn)
        img = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
        with torch.no_grad():
            ref = phone_net(model)(to_tensor(img))[0].permute(1, 2, 0).numpy()
        assert np.abs(run_ncnn(net, img) - ref).max() < 2e-3


@pytest.mark.parametrize("name", ["tiny-1k-x4", "edsr-tiny-x2", "compact-5k-x2"])
def test_coreml_program_structure(name, tmp_path):
    import coremltools as ct

    model = load_network(name, scale=None)[0].to_torch()
    export_coreml(model, tmp_path / "m.mlpackage")
    spec = ct.utils.load_spec(str(tmp_path / "m.mlpackage"))
    (inp,), (out,) = spec.description.input, spec.description.output
    assert (inp.name, list(inp.type.multiArrayType.shape), out.name) == ("lr", [1, 3, 64, 64], "sr")
    ranges = inp.type.multiArrayType.shapeRange.sizeRanges
    assert [(r.lowerBound, r.upperBound) for r in ranges[2:]] == [(2, 4096), (2, 4096)]
    assert json.loads(spec.description.metadata.userDefined["tinysr_config"])["scale"] == model.config.scale
    ops = coreml_program_ops(spec)
    assert max(r for _, ranks in ops for r in ranks) <= 4
    kinds = [kind for kind, _ in ops if kind != "const"]
    n_convs = sum(op["op"] == "conv" for op in phone_form(model))
    family = model.config.family
    if family == "tiny":  # the 1x1 luma, its convs, the anchor
        assert n_convs == len(model.convs) + 2
    else:  # compact: its convs and the 1x1 nearest anchor; EDSR: head, body end, upsampler, tail
        assert n_convs == (model.config.n_layers + 1 if family == "compact" else 4)
    assert kinds.count("pixel_shuffle") == 1 and kinds.count("conv") == n_convs
    assert kinds.count("prelu") == (model.config.n_layers - 1 if family == "compact" else 0)
    assert set(kinds) <= {"conv", "relu", "prelu", "add", "slice_by_index", "concat", "pixel_shuffle"}


def test_cli_exports_phone_formats(tmp_path, capsys):
    for fmt, out in [("tflite", "m.tflite"), ("ncnn", "m.param"), ("coreml", "m.mlpackage")]:
        assert main(["export", "--model", "edsr-tiny-x2", "--format", fmt, str(tmp_path / out)]) == 0
    assert (tmp_path / "m.bin").is_file() and (tmp_path / "m.mlpackage" / "Manifest.json").is_file()
    assert capsys.readouterr().out.count("wrote") == 3
