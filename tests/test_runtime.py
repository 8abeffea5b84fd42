"""tinysr.export.runtime: the torch-free NumPy interpreter matches torch, tiles exactly, and never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinysr.export import runtime
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.export.numpy_export import export_numpy
from tinysr.infer.upscale import upscale
from tinysr.models.window import receptive_radius, to_image, to_tensor
from tinysr.resize import imresize, to_uint8

from helpers import random_edsr

CONFIGS = [dict(n_blocks=0, n_feats=4, scale=2), dict(n_blocks=1, n_feats=8, scale=3),
           dict(n_blocks=2, n_feats=16, scale=4, res_scale=0.1)]


@pytest.fixture(scope="module")
def photo(data_dir) -> np.ndarray:
    img, _ = read_image(data_dir / "Set14" / "baboon.png")
    return np.ascontiguousarray(img[200:239, 300:331])  # 39x31


def exported(model, tmp_path) -> runtime.Program:
    path = tmp_path / "model.npz"
    export_numpy(model, path)
    return runtime.load(path)


def test_conv2d_and_pixel_shuffle_match_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 9, 11)).astype(np.float32)
    for k, pad in ((3, 1), (5, 2), (1, 0), (3, 0)):
        w = rng.normal(size=(7, 5, k, k)).astype(np.float32)
        b = rng.normal(size=7).astype(np.float32)
        ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b), padding=pad)[0]
        assert np.abs(runtime.conv2d(x, w, b, pad) - ref.numpy()).max() < 1e-4
    y = rng.normal(size=(12, 3, 4)).astype(np.float32)
    for f in (2,):
        assert np.array_equal(runtime.pixel_shuffle(y, f), F.pixel_shuffle(torch.from_numpy(y)[None], f)[0].numpy())
    y9 = rng.normal(size=(18, 3, 4)).astype(np.float32)
    assert np.array_equal(runtime.pixel_shuffle(y9, 3), F.pixel_shuffle(torch.from_numpy(y9)[None], 3)[0].numpy())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['n_blocks']}b-x{c['scale']}")
def test_runtime_matches_torch(photo, config, tmp_path):
    model = random_edsr(**config)
    numpy_model = exported(model, tmp_path)
    with torch.no_grad():
        ref = to_image(model(to_tensor(photo)))
    out = runtime.run(numpy_model, photo.transpose(2, 0, 1).astype(np.float32)).transpose(1, 2, 0)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-3  # float32 both sides, different summation order
    assert runtime.receptive_radius(numpy_model) == receptive_radius(model)
    assert numpy_model.scale == config["scale"] and numpy_model.config["n_blocks"] == config["n_blocks"]


def test_runtime_upscale_tiles_exactly_and_matches_torch_upscale(photo, tmp_path):
    model = random_edsr(**CONFIGS[2])
    numpy_model = exported(model, tmp_path)
    whole = runtime.upscale(photo, numpy_model)
    assert whole.shape == (156, 124, 3) and whole.dtype == np.uint8
    # NumPy's matmul (BLAS) may sum in another order for another width, so tiles agree to float rounding: a uint8
    # value at a rounding boundary may differ by 1. Too little context differs by far more.
    tiled = np.abs(runtime.upscale(photo, numpy_model, tile=9).astype(int) - whole)
    assert tiled.max() <= 1 and (tiled > 0).mean() < 1e-3
    assert np.abs(runtime.upscale(photo, numpy_model, tile=9, overlap=3).astype(int) - whole).max() > 2
    diff = np.abs(whole.astype(int) - upscale(photo, model))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # a value at a rounding boundary may go either way
    grey = runtime.upscale(photo[:, :, 0].copy(), numpy_model, tile=16)
    assert grey.shape == (156, 124)
    assert np.abs(grey.astype(int) - upscale(photo[:, :, 0].copy(), model)).max() <= 1


def test_runtime_keeps_alpha_as_torch_upscale_does(photo, tmp_path):
    """RGBA: the alpha channel is bit-identical to `tinysr.upscale`'s (MATLAB bicubic, shared code), RGB within the
    runtimes' parity (a value at a rounding boundary may go either way)."""
    model = random_edsr(**CONFIGS[1])
    alpha = np.linspace(0, 255, photo.shape[0] * photo.shape[1]).reshape(photo.shape[:2]).astype(np.uint8)
    rgba = np.dstack([photo, alpha])
    got, want = runtime.upscale(rgba, exported(model, tmp_path), tile=16), upscale(rgba, model)
    assert got.shape == want.shape == (117, 93, 4) and got.dtype == np.uint8  # 39x31 at x3
    assert np.array_equal(got[:, :, 3], want[:, :, 3])
    assert np.array_equal(got[:, :, 3], to_uint8(imresize(alpha.astype(np.float64), 3.0)))
    diff = np.abs(got[:, :, :3].astype(int) - want[:, :, :3])
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


def test_runtime_never_imports_torch(photo, tmp_path):
    model = random_edsr(**CONFIGS[1])
    export_numpy(model, tmp_path / "m.npz")
    sr, torch_modules, numba_loaded = upscale_in_fresh_process(tmp_path / "m.npz", photo, tmp_path)
    assert torch_modules == []
    assert np.abs(sr.astype(int) - upscale(photo, model)).max() <= 1


def upscale_in_fresh_process(npz, photo, tmp_path, *, fused=None) -> tuple[np.ndarray, list[str], bool]:
    """`runtime.upscale(photo, runtime.load(npz), tile=16, fused=fused)` in a new interpreter: (the result, the
    torch modules it imported, whether it imported Numba)."""
    np.save(tmp_path / "lr.npy", photo)
    lr = f"np.load({str(tmp_path / 'lr.npy')!r})"
    code = (
        "import json, sys, numpy as np; import tinysr.export.runtime as rt\n"
        f"m = rt.load({str(npz)!r})\n"
        f"np.save({str(tmp_path / 'sr.npy')!r}, rt.upscale({lr}, m, tile=16, fused={fused!r}))\n"
        "print(json.dumps([sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.')),\n"
        "                  'numba' in sys.modules]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    torch_modules, numba_loaded = json.loads(result.stdout)
    return np.load(tmp_path / "sr.npy"), torch_modules, numba_loaded


def test_npz_holds_no_pickles_and_the_config(tmp_path):
    model = random_edsr(**CONFIGS[0])
    export_numpy(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        config = json.loads(str(data["tinysr_config"]))
        program = json.loads(str(data["tinysr_program"]))
        assert data["head.weight"].dtype == np.float32 and data["head.weight"].shape == (4, 3, 3, 3)
    assert config == {"n_blocks": 0, "n_feats": 4, "scale": 2, "res_scale": 1.0, "n_colors": 3,
                      "rgb_range": 255.0, "family": "edsr"}
    assert [op["op"] for op in program["ops"]] == ["channel_shift", "conv2d", "conv2d", "add", "conv2d",
                                                   "pixel_shuffle", "conv2d", "channel_shift"]


def test_load_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TinySRError, match="bad.npz: not a tinysr NumPy export"):
        runtime.load(bad)
    with pytest.raises(TinySRError, match="no such file"):
        runtime.load(tmp_path / "missing.npz")
    program = {"format": 1, "input": "lr", "output": "sr", "ops": [{"op": "gelu", "in": ["lr"], "out": "sr"}]}
    np.savez(tmp_path / "op.npz", tinysr_program=np.array(json.dumps(program)),
             tinysr_config=np.array(json.dumps({"scale": 2})))
    with pytest.raises(TinySRError, match=r"op\.npz: no sha256 digest, .* pass --trust \(API: trust=True\)$"):
        runtime.load(tmp_path / "op.npz")
    with pytest.raises(TinySRError, match="unknown op 'gelu'"), pytest.warns(UserWarning, match="loaded unchecked"):
        runtime.load(tmp_path / "op.npz", trust=True)
    model = exported(random_edsr(**CONFIGS[0]), tmp_path)
    with pytest.raises(TinySRError, match=r"^upscale needs HW, HWx1, HWx3 or HWx4 uint8, got shape \(4, 4, 2\)$"):
        runtime.upscale(np.zeros((4, 4, 2), np.uint8), model)


def test_runtime_runs_a_tiny_net_fused_without_torch(photo, tmp_path):
    """The runtime runs Y-only tiny nets through `tinysr.infer.fused` (fused=True), still never importing torch, or
    through the interpreter (fused=False). Both agree with
    torch within a level."""
    pytest.importorskip("numba")
    from tinysr.infer.load import load_network

    model = load_network("tiny-1k-x2", scale=2)[0].to_torch()
    export_numpy(model, tmp_path / "m.npz")
    fused, torch_modules, numba_loaded = upscale_in_fresh_process(tmp_path / "m.npz", photo, tmp_path, fused=True)
    assert torch_modules == [] and numba_loaded
    fused = fused.astype(int)
    # by default every size takes the kernels (no size rule)
    default, torch_modules, numba_loaded = upscale_in_fresh_process(tmp_path / "m.npz", photo, tmp_path)
    assert torch_modules == [] and numba_loaded and np.array_equal(default, fused)
    interpreted = runtime.upscale(photo, runtime.load(tmp_path / "m.npz"), tile=16, fused=False).astype(int)
    two = runtime.upscale(photo, runtime.load(tmp_path / "m.npz"), tile=16, workers=2, fused=True)
    assert np.array_equal(two, fused)
    reference = upscale(photo, model, fused=False)
    for got in (fused, interpreted):
        diff = np.abs(got - reference)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    with pytest.raises(TinySRError, match="^the fused path needs RGB input$"):
        runtime.upscale(photo[:, :, 0].copy(), runtime.load(tmp_path / "m.npz"), fused=True)
    with pytest.raises(TinySRError, match="^the fused path needs a Y-only tiny net"):
        runtime.upscale(photo, exported(random_edsr(**CONFIGS[0]), tmp_path), fused=True)


def _rewrite(path, out, *, program=None, drop_digest=False, **arrays):
    with np.load(path, allow_pickle=False) as data:
        items = {k: data[k] for k in data.files}
    if program is not None:
        items["tinysr_program"] = np.array(json.dumps(program))
    if drop_digest:
        items.pop("tinysr_sha256")
    np.savez(out, **{**items, **arrays})
    return out


def test_damaged_or_hostile_exports_are_one_line(tmp_path):
    """A flipped byte, a truncation, or a program that would divide by zero or allocate hundreds of GiB: each is one
    TinySRError naming the file, before any pixel is computed."""
    path = tmp_path / "m.npz"
    export_numpy(random_edsr(**CONFIGS[0]), path)
    runtime.load(path)
    data = bytearray(path.read_bytes())
    with np.load(path) as z:
        name = next(k for k in z.files if k.endswith("head.weight"))
        needle = z[name].astype(np.float32).tobytes()[:8]
    at = bytes(data).find(needle)
    data[at] ^= 0x01
    (tmp_path / "flipped.npz").write_bytes(bytes(data))  # zip CRCs are not checked by np.load: the digest is
    with pytest.raises(TinySRError, match=r"flipped\.npz: (content does not match its recorded sha256|not a tinysr)"):
        runtime.load(tmp_path / "flipped.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[: len(data) // 2])
    with pytest.raises(TinySRError, match=r"cut\.npz: not a tinysr NumPy export"):
        runtime.load(tmp_path / "cut.npz")
    with np.load(path) as z:
        program = json.loads(str(z["tinysr_program"]))
    shuffle = next(op for op in program["ops"] if op["op"] == "pixel_shuffle")
    shuffle["factor"] = 0
    with pytest.raises(TinySRError, match=r"op pixel_shuffle has factor=0, outside 1\.\.8"), pytest.warns(UserWarning):
        runtime.load(_rewrite(path, tmp_path / "zero.npz", program=program, drop_digest=True), trust=True)
    huge = np.zeros((300_000, 1, 1, 1), np.float32)
    with pytest.raises(TinySRError, match=r"op conv2d has a weight of shape \(300000, 1, 1, 1\)"), \
            pytest.warns(UserWarning):
        runtime.load(_rewrite(path, tmp_path / "huge.npz", drop_digest=True, **{name: huge}), trust=True)
