"""Issue 25, adversarial inputs: weights that cannot be trusted (cases 7), records that lie (8), images over the pixel
limit under `--model auto` (9), names that would forge a message line (11) and a new user's friction (12).

Each test is one case of the issue, named by its number; each failed on the code before the fix (the closing note
of the issue lists what each saw) and is a one-line error or a correct result after it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tinysr
import tinysr.pretrained as pretrained
from helpers import random_edsr
from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.export import runtime
from tinysr.export.numpy_export import export_numpy
from tinysr.infer.load import load_network
from tinysr.integrity import Tensors, digest
from tinysr.models.weights import load_model as torch_load_model
from tinysr.models.weights import save_weights
from tinysr.pretrained import PRETRAINED_DIR, list_pretrained, read_table

pytestmark = pytest.mark.usefixtures("one_thread")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tinysr: error: "), err
    return err


def _header(path: Path) -> tuple[dict, bytes]:
    """(the safetensors JSON header, the tensor bytes after it)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write_header(path: Path, header: dict, body: bytes) -> Path:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + body)
    return path


def _with_metadata(src: Path, dst: Path, **changes) -> Path:
    """`src` re-written as `dst` with its metadata entries changed (None removes one); the tensors' bytes kept."""
    header, body = _header(src)
    meta = header["__metadata__"]
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return _write_header(dst, header, body)


@pytest.fixture()
def png(tmp_path) -> Path:
    path = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(path)
    return path


# ------------------------------------------------------------------------ case 7: integrity


def test_7_every_bundled_model_carries_its_digest_and_the_table_records_the_file_s():
    rows = read_table()
    assert len(rows) == 22
    for row in rows:
        path = PRETRAINED_DIR / row.file
        header, _ = _header(path)
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            tensors = Tensors({k: f.get_tensor(k) for k in f.keys()})
        assert header["__metadata__"]["tinysr_sha256"] == digest(tensors), row.name
        assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest(), row.name


@pytest.fixture()
def installed(tmp_path, monkeypatch) -> Path:
    """A copy of the installed pretrained folder, which `tinysr.pretrained` reads from now on."""
    root = tmp_path / "pretrained"
    shutil.copytree(PRETRAINED_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", root)
    return root


@pytest.mark.parametrize("where", ["tensor", "header"])
def test_7_a_flipped_byte_in_an_installed_model_is_refused(installed, where, png, tmp_path, capsys):
    path = installed / "tiny-1k-x2.safetensors"
    data = bytearray(path.read_bytes())
    if where == "tensor":
        data[-20] ^= 0x01  # one weight's last mantissa bit
    else:
        at = data.index(b"val_psnr") + 16  # a digit of the recorded validation PSNR (31.815...), in the header
        assert chr(data[at]).isdigit()
        data[at] = ord("7") if data[at] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    with pytest.raises(TinySRError, match=r"tiny-1k-x2\.safetensors: .*(sha256|digest)"):
        load_network("tiny-1k-x2", scale=None)
    assert main(["upscale", "--model", "tiny-1k-x2", str(png), "-o", str(tmp_path / "out")]) == 2
    assert "tiny-1k-x2.safetensors" in _error_line(capsys) and not (tmp_path / "out").exists()


@pytest.fixture()
def unsigned(tmp_path) -> Path:
    """Weights with their digest stripped (as from another tool, or an old tinysr)."""
    signed = tmp_path / "signed.safetensors"
    save_weights(signed, random_edsr("edsr-tiny", std=0.05))
    return _with_metadata(signed, tmp_path / "unsigned.safetensors", tinysr_sha256=None)


def test_7_weights_without_a_digest_load_only_with_trust(unsigned, png, tmp_path, capsys):
    for load in (lambda **kw: load_network(str(unsigned), scale=None, **kw),
                 lambda **kw: tinysr.load_model(unsigned, **kw),
                 lambda **kw: torch_load_model(unsigned, **kw)):
        with pytest.raises(TinySRError, match=r"unsigned\.safetensors: no sha256 digest.*--trust"):
            load()
        with pytest.warns(UserWarning, match=r"unsigned\.safetensors: no sha256 digest; loaded unchecked"):
            load(trust=True)
    out = tmp_path / "out.png"
    assert main(["upscale", "--model", str(unsigned), str(png), "-o", str(out)]) == 2
    assert "--trust" in _error_line(capsys) and not out.exists()
    assert main(["upscale", "--model", str(unsigned), str(png), "-o", str(out), "--trust"]) == 0
    err = capsys.readouterr().err
    assert "tinysr: warning: " in err and "no sha256 digest; loaded unchecked" in err and out.is_file()


def test_7_trust_is_offered_wherever_a_weights_file_is_loaded(unsigned, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "a.png")
    for argv in (["eval", "--model", str(unsigned), "--data", str(images)],
                 ["export", str(tmp_path / "m.npz"), "--model", str(unsigned), "--format", "numpy"],
                 ["web", "--build", str(tmp_path / "site"), "--model", str(unsigned)],
                 ["train", "--init", str(unsigned), "--out", str(tmp_path / "run"), "--train-data", str(images),
                  "--val-data", str(images), "--steps", "1"]):
        assert main(argv) == 2, argv
        assert "--trust" in _error_line(capsys), argv
    assert main(["export", str(tmp_path / "m.npz"), "--model", str(unsigned), "--format", "numpy", "--trust"]) == 0
    assert (tmp_path / "m.npz").is_file()


def _signed_with(tmp_path: Path, name: str, *, state=None, config=None) -> Path:
    """Weights whose tensors (or config) were edited and then given a correct digest: only range checks see it."""
    model = random_edsr("edsr", std=0.05, n_blocks=1, n_feats=4)
    path = tmp_path / name
    save_weights(path, model)
    header, body = _header(path)
    if state is not None:
        tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state(tensors)
        save_weights_state = {k: v.contiguous() for k, v in tensors.items()}
        from safetensors.torch import save

        metadata = header["__metadata__"] | {"tinysr_sha256": digest(save_weights_state)}
        path.write_bytes(save(save_weights_state, metadata=metadata))
        return path
    header["__metadata__"]["tinysr_config"] = config
    return _write_header(path, header, body)


def _huge(tensors) -> None:
    tensors["tail.weight"][0, 0, 1, 1] = 3e38


@pytest.mark.parametrize("case, make, message", [
    ("3e38 weight", lambda t: _signed_with(t, "huge.safetensors", state=_huge),
     r"huge\.safetensors: weights 'tail\.weight' reach 3e\+38, beyond"),
    ("NaN res_scale", lambda t: _signed_with(t, "nan.safetensors", config=(
        '{"family": "edsr", "n_blocks": 1, "n_feats": 4, "scale": 2, "res_scale": NaN}')),
     r"nan\.safetensors: config res_scale is nan"),
    ("inf rgb_range", lambda t: _signed_with(t, "inf.safetensors", config=(
        '{"family": "edsr", "n_blocks": 1, "n_feats": 4, "scale": 2, "rgb_range": 1e999}')),
     r"inf\.safetensors: config rgb_range is inf"),
], ids=["3e38-weight", "nan-res-scale", "inf-rgb-range"])
def test_7_out_of_range_weights_and_config_values_are_refused(tmp_path, png, case, make, message, capsys):
    path = make(tmp_path)
    out = tmp_path / "out.png"
    assert main(["upscale", "--model", str(path), str(png), "-o", str(out)]) == 2, case
    err = _error_line(capsys)
    assert re.search(message, err), err
    assert not out.exists()
    with pytest.raises(TinySRError, match=message):
        torch_load_model(path)


def test_7_a_numpy_export_with_nan_weights_and_no_digest_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    export_numpy(random_edsr("edsr-tiny", std=0.05), path)
    with np.load(path, allow_pickle=False) as data:
        items = {k: data[k] for k in data.files}
    name = next(k for k in items if k.endswith("head.weight"))
    clean = {k: v for k, v in items.items() if k != "tinysr_sha256"}
    unsigned = dict(clean, **{name: items[name].copy()})
    unsigned[name].flat[0] = np.nan
    np.savez(tmp_path / "nan.npz", **unsigned)
    with pytest.raises(TinySRError, match=r"nan\.npz: no sha256 digest"):
        runtime.load(tmp_path / "nan.npz")
    with pytest.raises(TinySRError, match=rf"nan\.npz: weights '{name}' hold NaN or infinity"):
        with pytest.warns(UserWarning, match="no sha256 digest; loaded unchecked"):
            runtime.load(tmp_path / "nan.npz", trust=True)
    signed = dict(unsigned, tinysr_sha256=np.array(runtime.export_digest(
        str(items["tinysr_program"]), str(items["tinysr_config"]),
        {k: v for k, v in unsigned.items() if not k.startswith("tinysr_")})))
    np.savez(tmp_path / "signed-nan.npz", **signed)
    with pytest.raises(TinySRError, match=rf"signed-nan\.npz: weights '{name}' hold NaN or infinity"):
        runtime.load(tmp_path / "signed-nan.npz")
    program = json.loads(str(items["tinysr_program"]))
    program["ops"].insert(1, {"op": "scale", "in": [program["ops"][0]["out"]], "out": "s", "factor": float("nan")})
    program["ops"][2]["in"] = ["s"]
    np.savez(tmp_path / "nan-op.npz", **dict(clean, tinysr_program=np.array(json.dumps(program))))
    with pytest.raises(TinySRError, match=r"nan-op\.npz: op scale factor is nan"):
        with pytest.warns(UserWarning):
            runtime.load(tmp_path / "nan-op.npz", trust=True)


# ------------------------------------------------------------------------ case 8: the record


def _jpeg(path: Path, size: tuple[int, int], comment: bytes | None = None) -> Path:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    image.save(path, quality=90, **({"comment": comment} if comment is not None else {}))
    return path


@pytest.mark.parametrize("comment", [b"hello tinysr:scale=1;size=5x5 world", b"tinysr:scale=2;size=0x0",
                                     b"tinysr:scale=2;size=40x40", b"tinysr:scale=2;size=31x32 ",
                                     b"tinysr:scale=02;size=32x32"])
def test_8_a_record_that_is_not_exact_or_consistent_is_ignored_with_a_warning(tmp_path, comment, capsys):
    src = _jpeg(tmp_path / "in.jpg", (16, 16), comment)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (32, 32, 3)  # upscaled x2, nothing cropped
    captured = capsys.readouterr()
    assert "tinysr: warning: " in captured.err and "record ignored" in captured.err, captured.err
    assert "-> tiny-1k-x2" in captured.out


@pytest.mark.parametrize("comment, shape, model", [(b"tinysr:scale=2;size=31x32", (32, 31, 3), "tiny-1k-x2"),
                                                   (b"tinysr:scale=3;size=48x46", (46, 48, 3), "tiny-1k-x3"),
                                                   (b"tinysr:scale=1;size=16x16", (16, 16, 3), "none")])
def test_8_an_exact_consistent_record_is_honoured(tmp_path, comment, shape, model, capsys):
    src = _jpeg(tmp_path / "in.jpg", (16, 16), comment)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == shape
    captured = capsys.readouterr()
    assert "warning" not in captured.err and f"-> {model}" in captured.out


def test_8_one_file_recording_scale_8_does_not_stop_the_batch(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _jpeg(folder / "a.jpg", (16, 16), b"tinysr:scale=8;size=128x128")
    _jpeg(folder / "b.jpg", (16, 16))
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out")]) == 0
    assert [np.asarray(Image.open(tmp_path / "out" / n)).shape for n in ("a.jpg", "b.jpg")] == [(32, 32, 3)] * 2
    err = capsys.readouterr().err
    assert "a.jpg: record ignored" in err and "x8" in err


# ------------------------------------------------------------------------ case 9: --max-pixels under auto


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height (8-bit grey) and holds no pixel data: cheap to write, over any limit."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_9_auto_honours_max_pixels_like_a_named_model(tmp_path, capsys):
    big = _png_header_only(tmp_path / "big.png", 14_000, 13_000)  # 182 MP: over twice Pillow's default limit
    errors = {}
    for model in ("auto", "tiny-1k-x2"):
        argv = ["upscale", "--model", model, str(big), "-o", str(tmp_path / model)]
        assert main(argv) == 1
        errors[model, "default"] = capsys.readouterr().err
        assert main([*argv, "--max-pixels", "200000000"]) == 1
        errors[model, "raised"] = capsys.readouterr().err
    # under the default limit both refuse the file with the same advice; with the limit raised both get past it to
    # the (missing) pixels, and fail there alike
    assert "--max-pixels" in errors["auto", "default"] and "big.png" in errors["auto", "default"]
    assert "exceeds" not in errors["auto", "raised"] and "big.png" in errors["auto", "raised"]
    assert errors["auto", "default"] == errors["tiny-1k-x2", "default"]
    assert errors["auto", "raised"] == errors["tiny-1k-x2", "raised"]


# ------------------------------------------------------------------------ case 11: every message on one line


def test_11_a_name_cannot_forge_a_line_in_auto_s_output(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a\ntinysr: error: forged.png")
    out = tmp_path / "o\ntinysr: error: forged too"
    assert main(["upscale", str(folder), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert not [line for line in lines if line.startswith("tinysr: error")], lines
    assert any("a\\ntinysr: error: forged.png: PNG (lossless) -> tiny-1k-x2" in line for line in lines)
    assert any(line.startswith("upscaled 1 of 1 images") and "o\\ntinysr: error: forged too" in line
               for line in lines)


# ------------------------------------------------------------------------ case 12: friction


def test_12_encode_creates_the_output_s_folder(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "enc" / "x.jpg"
    assert main(["encode", str(src), "--budget", "3000", "-o", str(out)]) == 0
    assert out.is_file() and out.stat().st_size <= 3000


def test_12_encode_of_a_1x1_image_is_one_clear_line(tmp_path, capsys):
    src = tmp_path / "dot.png"
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(src)
    assert main(["encode", str(src), "--budget", "3000", "-o", str(tmp_path / "dot.jpg")]) == 2
    err = _error_line(capsys)
    assert "dot.png: 1x1 pixels" in err and "nan" not in err and not (tmp_path / "dot.jpg").exists()


def test_12_a_file_like_output_with_an_unknown_suffix_is_refused(png, tmp_path, capsys):
    assert main(["upscale", "--model", "tiny-1k-x2", str(png), "-o", str(tmp_path / "out.txt")]) == 2
    assert "out.txt" in _error_line(capsys) and not (tmp_path / "out.txt").exists()
    (tmp_path / "made.v2").mkdir()  # an existing folder of any name is still a folder, and so is a name ending in /
    assert main(["upscale", "--model", "tiny-1k-x2", str(png), "-o", str(tmp_path / "made.v2")]) == 0
    assert main(["upscale", "--model", "tiny-1k-x2", str(png), "-o", f"{tmp_path / 'new.v3'}/"]) == 0
    assert (tmp_path / "made.v2" / "in.png").is_file() and (tmp_path / "new.v3" / "in.png").is_file()


def test_12_export_help_names_every_format(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "LiteRT" in text and "ncnn" in text and "Core ML" in text and ".mlpackage" in text
    assert "never a folder, a link or the model" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("export a network: ONNX (float or int8), the NumPy runtime, LiteRT (tflite), ncnn, Core ML or spandrel"
            in text)
    with pytest.raises(SystemExit):
        main(["web", "--help"])
    assert "only if it is a site tinysr built (it holds tinysr-site.json)" in " ".join(
        capsys.readouterr().out.split())
