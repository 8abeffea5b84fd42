"""App conventions (`tinysr.export.apps`): chaiNNer's ONNX file under onnxruntime and Upscayl's ncnn pair under the
`ncnn` package, each run through an emulation of its app's own loading, pre- and post-processing (written from the
sources and commits named in `tinysr.export.apps`), against `tinysr.upscale` of the same bundled model.

Parity: at most 1 grey level, on at most 0.1 % of the values. Both apps may pad an image before the net sees it:
chaiNNer to a multiple of 16 at the bottom and right (once it knows the scale), Upscayl by 10 pixels around every
tile, mirrored at the image's edges. There the net sees mirrored pixels where `tinysr.upscale` applies its own border
rule, and no file can tell the two apart. So parity is checked on whole images where the app adds no padding
(chaiNNer: sides that are multiples of 16; Upscayl: the file fed the image itself), and, where it does pad, outside
the band the padding reaches (the net's receptive radius); that band is checked to differ, which shows that the
emulation pads as the app does.
"""

from __future__ import annotations

import copy

import ncnn
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.tools.update_model_dims import update_inputs_outputs_dims

import tinysr
from tinysr.cli import main
from tinysr.cli.parser import build_parser
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.export.apps import (CHAINNER_MULTIPLE, CONVENTIONS, UPSCAYL_PREPADDING, check_upscayl,
                                upscayl_scales)
from tinysr.export.ncnn import bin_path, export_ncnn, ncnn_net, rename_blobs
from tinysr.export.onnx import export_onnx, read_onnx_config
from tinysr.infer.load import load_network
from tinysr.models.window import receptive_radius

from helpers import random_edsr

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = ("tiny-1k-x2", "tiny-1k-x3", "tiny-1k-x4", "tiny-5k-x2", "edsr-tiny-x2", "compact-5k-x2",
          "compact-5k-x2-jpeg")  # compact: Real-ESRGAN's SRVGGNetCompact, as Upscayl's own realesr-animevideov3
MAX_LEVELS, MAX_FRACTION = 1, 0.001


def assert_parity(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= MAX_LEVELS and np.mean(diff > 0) <= MAX_FRACTION, (diff.max(), np.mean(diff > 0))


def inner(img: np.ndarray, *, scale: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """The part of an SR image more than (top, left, bottom, right) LR pixels from its edges."""
    h, w = img.shape[0] // scale, img.shape[1] // scale
    return img[top * scale:(h - bottom) * scale, left * scale:(w - right) * scale]


@pytest.fixture(scope="module")
def images(data_dir) -> dict[str, np.ndarray]:
    baby = read_image(data_dir / "Set5" / "baby.png")[0]
    zebra = read_image(data_dir / "Set14" / "zebra.png")[0]
    return {"baby 96x128": baby[100:196, 200:328], "zebra 48x80": zebra[40:88, 60:140],
            "zebra 37x53": zebra[40:77, 60:113]}  # two of sides 16k (no chaiNNer padding), one odd


@pytest.fixture(scope="module")
def networks() -> dict[str, object]:
    return {name: load_network(name, scale=None)[0] for name in MODELS}


@pytest.fixture(scope="module")
def references(networks, images) -> dict[tuple[str, str], np.ndarray]:
    return {(m, i): tinysr.upscale(img, net) for m, net in networks.items() for i, img in images.items()}


# ---------------------------------------------------------------------------------------------------- chaiNNer


def chainner_info(path) -> tuple[str, int, str, int | None, int]:
    """(layout, input channels, dtype, scale, padding multiple) as chaiNNer's `load_onnx_model` finds them:
    utils.py `parse_onnx_shape` and `get_tensor_fp_datatype`, load.py `_detect_size_req` (strict shape inference of
    the graph with its input fixed to 16, 64, 256, 512 pixels; the first that resolves gives both)."""
    proto = onnx.load(str(path))
    (source,), (target,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in source.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in target.type.tensor_type.shape.dim]
    layout, channels = ("BCHW", dims[1]) if isinstance(dims[1], int) and dims[1] <= 4 else ("BHWC", dims[3])
    dtype = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.FLOAT: "fp32"}[source.type.tensor_type.elem_type]
    for size in (16, 64, 256, 512):
        probe = copy.deepcopy(proto)
        update_inputs_outputs_dims(probe, {source.name: [1, channels, size, size]}, {target.name: out_dims})
        inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=True)
        out = [d.dim_value if d.HasField("dim_value") else None
               for d in inferred.graph.output[0].type.tensor_type.shape.dim]
        if out[2] and out[3] and out[2] % size == 0 and out[2] == out[3]:
            return layout, channels, dtype, out[2] // size, size
    return layout, channels, dtype, None, 1


def chainner_upscale(session, rgb: np.ndarray, *, multiple: int) -> np.ndarray:
    """chaiNNer's ONNX "Upscale Image" of an RGB uint8 image that fits one tile (<= 256 pixels a side), saved as
    8 bits (onnx/auto_split.py `onnx_auto_split`, upscale/convenient_upscale.py, image_utils.py `to_uint8`)."""
    img = rgb[:, :, ::-1].astype(np.float32) / 255  # chaiNNer holds images as BGR float32 0..1 (`normalize`)
    h, w = img.shape[:2]
    pad_h, pad_w = -h % multiple, -w % multiple  # `SizeReq.get_padding`
    if pad_h or pad_w:
        img = np.pad(img, [(0, pad_h), (0, pad_w), (0, 0)], "reflect")  # `_pad`
    x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None])  # `_flip_r_b_channels`, BCHW
    (out,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: x})
    out = out[0].transpose(1, 2, 0)[:, :, ::-1].astype(np.float32)  # back to HWC BGR
    scale = out.shape[0] // (h + pad_h)
    out = np.clip(out[:h * scale, :w * scale], 0, 1)  # `remove_padding`, then the `clipped` op
    return (out * 255).round().astype(np.uint8)[:, :, ::-1]  # `to_uint8`; RGB again to compare


@pytest.fixture(scope="module")
def chainner_files(networks, tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("chainner")
    for name, net in networks.items():
        export_onnx(net.to_torch(), folder / f"{name}.onnx", convention="chainner")
    return {name: folder / f"{name}.onnx" for name in networks}


@pytest.mark.parametrize("name", MODELS)
def test_chainner_finds_layout_channels_dtype_and_scale(name, networks, chainner_files):
    scale = networks[name].scale
    assert chainner_info(chainner_files[name]) == ("BCHW", 3, "fp32", scale, CHAINNER_MULTIPLE)
    proto = onnx.load(str(chainner_files[name]))
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    assert {n.op_type for n in proto.graph.node} <= {"Constant", "Mul", "Div", "Conv", "Relu", "PRelu", "Slice",
                                                       "Concat", "Add", "DepthToSpace"}
    assert read_onnx_config(chainner_files[name])["scale"] == scale  # tinysr's metadata rides along


@pytest.mark.parametrize("name", MODELS)
def test_chainner_emulation_at_parity(name, networks, images, references, chainner_files):
    """Sides of 16k pixels: chaiNNer pads nothing, and the whole image, borders included, is at parity."""
    session = ort.InferenceSession(str(chainner_files[name]), providers=["CPUExecutionProvider"])
    for key in ("baby 96x128", "zebra 48x80"):
        assert_parity(chainner_upscale(session, images[key], multiple=CHAINNER_MULTIPLE), references[name, key])


@pytest.mark.parametrize("name", ["tiny-1k-x2", "tiny-1k-x4", "compact-5k-x2"])
def test_chainner_padding_changes_only_the_bottom_and_right_band(name, networks, images, references,
                                                                 chainner_files):
    session = ort.InferenceSession(str(chainner_files[name]), providers=["CPUExecutionProvider"])
    net, key = networks[name], "zebra 37x53"
    sr, ref = chainner_upscale(session, images[key], multiple=CHAINNER_MULTIPLE), references[name, key]
    assert_parity(chainner_upscale(session, images[key], multiple=1), ref)  # the file itself, unpadded
    r = receptive_radius(net.to_torch())
    band = dict(scale=net.scale, top=0, left=0, bottom=r, right=r)
    assert_parity(inner(sr, **band), inner(ref, **band))
    assert np.abs(sr.astype(int) - ref).max() > MAX_LEVELS  # the mirrored rows and columns reach the output


# ---------------------------------------------------------------------------------------------------- Upscayl


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """realesrgan_preproc.comp's index rule: a whole-sample mirror at 0 and n - 1."""
    index = np.abs(index)
    return (n - 1) - np.abs(index - (n - 1))


def upscayl_upscale(net, rgb: np.ndarray, *, scale: int, tile: int,
                    prepadding: int = UPSCAYL_PREPADDING) -> np.ndarray:
    """upscayl-ncnn's `RealESRGAN::process` (realesrgan.cpp and its pre/post-processing shaders, fp32 blobs) on an
    RGB uint8 image as stb decodes it (Linux, macOS): tiles of `tile` LR pixels, each padded by `prepadding`."""
    h, w, _ = rgb.shape
    sr = np.empty((h * scale, w * scale, 3), np.uint8)
    pad = prepadding * scale
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            rows = _mirror(np.arange(y0 - prepadding, y1 + prepadding), h)
            cols = _mirror(np.arange(x0 - prepadding, x1 + prepadding), w)
            window = np.ascontiguousarray(rgb[np.ix_(rows, cols)])
            x = ncnn.Mat.from_pixels(window, ncnn.Mat.PixelType.PIXEL_RGB, window.shape[1], window.shape[0])
            x.substract_mean_normalize([], [1 / 255.0] * 3)  # the preproc shader's v * (1 / 255.f)
            extractor = net.create_extractor()
            extractor.input("data", x)
            status, out = extractor.extract("output")
            assert status == 0
            out = np.array(out)[:, pad:pad + (y1 - y0) * scale, pad:pad + (x1 - x0) * scale]
            v = out * np.float32(255) + np.float32(0.5)  # the postproc shader
            sr[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = np.clip(np.trunc(v), 0, 255).transpose(1, 2, 0)
    return sr  # to_pixels: (int) v, clamped to 0..255


@pytest.fixture(scope="module")
def upscayl_files(networks, tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("app") / "models"
    folder.mkdir()
    for name, net in networks.items():
        export_ncnn(net.to_torch(), folder / f"{name}.param", convention="upscayl")
    return {name: folder / f"{name}.param" for name in networks}


@pytest.mark.parametrize("name", MODELS)
def test_upscayl_folder_names_blobs_and_scale(name, networks, upscayl_files):
    param = upscayl_files[name]
    assert sorted(p.name for p in param.parent.iterdir() if p.stem == name) == [f"{name}.bin", f"{name}.param"]
    assert upscayl_scales(param.stem) == (networks[name].scale,) * 2
    lines = [line.split() for line in param.read_text().splitlines()[2:]]
    assert lines[0][:5] == ["Input", "data", "0", "1", "data"]
    tops = [f for line in lines for f in line[4 + int(line[2]):4 + int(line[2]) + int(line[3])]]
    assert tops.count("output") == 1 and "in0" not in tops and "out0" not in tops
    assert all("." not in line[0] for line in lines)  # ncnn's own layers only


@pytest.mark.parametrize("name", MODELS)
def test_upscayl_emulation_at_parity(name, networks, images, references, upscayl_files):
    """The file fed each whole image (no tiles, no app padding) is at parity, borders included; Upscayl's own runs
    (one tile, and tiles of 32) are at parity more than the receptive radius from the image's edges, differ in that
    band (the mirrored padding), and agree with each other there too (the tiles join without seams)."""
    net, ncnn_model = networks[name], ncnn_net(upscayl_files[name])
    r, scale = receptive_radius(net.to_torch()), net.scale
    band = dict(scale=scale, top=r, left=r, bottom=r, right=r)
    for key in ("baby 96x128", "zebra 37x53"):
        img, ref = images[key], references[name, key]
        assert_parity(upscayl_upscale(ncnn_model, img, scale=scale, tile=256, prepadding=0), ref)
        whole = upscayl_upscale(ncnn_model, img, scale=scale, tile=200)
        tiled = upscayl_upscale(ncnn_model, img, scale=scale, tile=32)
        assert_parity(inner(whole, **band), inner(ref, **band))
        assert_parity(tiled, whole)
        assert np.abs(whole.astype(int) - ref).max() > MAX_LEVELS


@pytest.mark.parametrize(("name", "scales"), [
    ("tiny-1k-x2", (2, 2)), ("tiny-1k-x3", (3, 3)), ("tiny-1k-x4", (4, 4)), ("tiny", (4, 4)),
    ("2x-tiny", (2, 2)), ("Tiny-X2", (2, 4)),  # the app lower-cases, upscayl-ncnn does not
    ("tiny-1x-x2", (2, 1)), ("tiny-x16", (4, 1)),  # upscayl-ncnn tries x1/1x first
])
def test_upscayl_reads_the_scale_from_the_name(name, scales):
    assert upscayl_scales(name) == scales


def test_upscayl_refusals(tmp_path):
    model = random_edsr(std=0.05, n_blocks=0, n_feats=4, scale=2)
    with pytest.raises(TinySRError, match=r"'Tiny-X2' reads as x2 \(app\) / x4 \(upscayl-ncnn\), but the model is "
                                          r"x2; name it e\.g\. Tiny-X2-x2\.param"):
        check_upscayl(tmp_path / "Tiny-X2.param", model)
    wide = random_edsr(std=0.05, n_blocks=4, n_feats=4, scale=2)  # receptive radius 12
    with pytest.raises(TinySRError, match=f"sees 12 LR pixels .* more than the {UPSCAYL_PREPADDING}"):
        check_upscayl(tmp_path / "wide-x2.param", wide)
    text = "7767517\n2 2\nInput in0 0 1 in0\nReLU relu 1 1 in0 data\n"
    with pytest.raises(TinySRError, match="already used: data"):
        rename_blobs(text, {"in0": "data"})
    assert rename_blobs(text, {"in0": "x"}).splitlines()[2:] == ["Input x 0 1 x", "ReLU relu 1 1 x data"]


# ---------------------------------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", ["tiny-1k-x2", "compact-5k-x2"])
def test_cli_writes_each_app_convention(name, tmp_path, capsys):
    (tmp_path / "models").mkdir()
    assert main(["export", "--model", name, "--format", "onnx", "--convention", "chainner",
                 str(tmp_path / "net.onnx")]) == 0
    assert main(["export", "--model", name, "--format", "ncnn", "--convention", "upscayl",
                 str(tmp_path / "models" / "net-x2.param")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(onnx, chainner's convention," in out[0] and "(ncnn, upscayl's convention," in out[1]
    assert chainner_info(tmp_path / "net.onnx")[3] == 2 and bin_path(tmp_path / "models" / "net-x2.param").is_file()
    choices = build_parser()._subparsers._group_actions[0].choices["export"]._option_string_actions["--convention"]
    assert set(choices.choices) == {c for names in CONVENTIONS.values() for c in names}


@pytest.mark.parametrize(("argv", "message"), [
    (["--format", "tflite", "--convention", "chainner", "m.tflite"], "--convention chainner is for --format onnx, "
                                                                      "not tflite"),
    (["--format", "onnx", "--convention", "upscayl", "m.onnx"], "--convention upscayl is for --format ncnn, not onnx"),
    (["--format", "ncnn", "--convention", "upscayl", "models/tiny.param"], "'tiny' reads as x4 (app) / x4"),
])
def test_cli_refuses_with_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    (tmp_path / "models").mkdir()
    argv = [str(tmp_path / a) if a.startswith(("m.", "models/")) else a for a in argv]
    assert main(["export", "--model", "tiny-1k-x2", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinysr: error: ") and message in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["models"]
