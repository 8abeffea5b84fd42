"""tinysr.pretrained: the bundled table, each bundled model (parametrized over the table), and `tinysr models`.

`test_table_and_files_agree` forces a row of models.json per bundled file; the per-model tests run for each row,
including its Set5 PSNR (model and bicubic) against the number the row records.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

import tinysr.pretrained as pretrained
from tinysr.infer import fused
from tinysr.integrity import Tensors, digest
from tinysr.models.weights import save_weights
from tinysr.cli import main
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.infer.upscale import upscale
from tinysr.models import count_params, create_model
from tinysr.pretrained import PRETRAINED_DIR, file_sha256, list_pretrained, pretrained_path, read_table
from tinysr.data.folder import decode_all, image_folder
from tinysr.evaluate import evaluate
from tinysr.infer.load import load_network, resolve_upscaler
from tinysr.metrics import PROTOCOLS


def test_table_and_files_agree():
    rows = read_table()
    assert {r.file for r in rows} == {p.name for p in PRETRAINED_DIR.glob("*.safetensors")}
    assert list_pretrained() == [r.name for r in rows]
    for row in rows:  # the table's size and sha256 are the file's, and the file records its tensors' digest
        path = PRETRAINED_DIR / row.file
        assert (path.stat().st_size, file_sha256(path)) == (row.bytes, row.sha256), row.name
        with safe_open(str(path), framework="np") as f:
            tensors = Tensors({key: f.get_tensor(key) for key in f.keys()})
            assert f.metadata()["tinysr_sha256"] == digest(tensors), row.name


@pytest.mark.parametrize("name", list_pretrained())
def test_bundled_model_loads_matches_its_row_and_tiles_exactly(name, data_dir):
    row = {r.name: r for r in read_table()}[name]
    model, _ = load_network(name, scale=row.scale)
    assert model.config.scale == row.scale and count_params(model) == row.params
    assert pretrained_path(name).stat().st_size == row.bytes
    img = read_image(data_dir / "Set5" / "bird.png")[0][:70, :90]
    with torch.backends.mkldnn.flags(enabled=False):
        whole = upscale(img, model, fused=False)
        # torch's convs sum in an order that depends on the input's size, so a tile can land a .5 tie on the other
        # side (tiny-5k-x3: 1 value of 170,100, by 1); the compiled kernels below tile bit for bit
        tiled = np.abs(upscale(img, model, tile=32, fused=False).astype(int) - whole)
        assert tiled.max() <= 1 and (tiled > 0).mean() <= 1e-4
    compiled = model.fused is not None or model.config.family == "compact"  # the kernels of tiny and compact nets
    if fused.available() and compiled:
        fast = upscale(img, model, fused=True)
        assert np.array_equal(upscale(img, model, tile=32, fused=True), fast)
        assert np.abs(fast.astype(int) - whole).max() <= 1
    else:
        assert name == "edsr-tiny-x2" or not fused.available()


@pytest.fixture(scope="module")
def set5(data_dir) -> list[tuple[str, np.ndarray]]:
    """Set5's HR images (name, HWC RGB uint8), as `tinysr eval` reads them."""
    return [(p.stem, read_image(p)[0]) for p in sorted((data_dir / "Set5").glob("*.png"))]


@pytest.mark.parametrize("name", list_pretrained())
def test_bundled_model_set5_psnr_is_the_one_its_row_records(name, set5):
    """The table's Set5 numbers, model and bicubic, reproduced under the row's protocol at the row's scale (the
    table rounds to 0.001 dB; the rest of the tolerance covers float summation order across machines)."""
    row = {r.name: r for r in read_table()}[name]
    assert len(set5) == 5
    for spec, key in ((name, "Set5"), ("bicubic", "bicubic Set5")):
        upscaler, _, _ = resolve_upscaler(spec, scale=row.scale)
        report = evaluate(upscaler, set5, scale=row.scale, protocol=PROTOCOLS[row.protocol])
        assert report.mean["psnr"] == pytest.approx(row.psnr[key], abs=0.005), (spec, report.mean)


@pytest.fixture()
def fake_root(tmp_path):
    """A package folder with one (randomly initialised) model, to exercise the machinery, not to ship."""
    model = create_model("edsr-tiny")
    save_weights(tmp_path / "demo-x2.safetensors", model)
    row = {"name": "demo-x2", "file": "demo-x2.safetensors", "scale": 2, "params": count_params(model),
           "bytes": (tmp_path / "demo-x2.safetensors").stat().st_size,
           "sha256": file_sha256(tmp_path / "demo-x2.safetensors"), "train_command": "tinysr train ...",
           "train_wall_s": None,
           "protocol": "standard", "psnr": {"Set5": 33.0}}
    (tmp_path / "models.json").write_text(json.dumps({"format": 1, "models": [row]}))
    return tmp_path


def test_machinery_on_a_temporary_table(fake_root, monkeypatch, capsys):
    assert list_pretrained(root=fake_root) == ["demo-x2"]
    assert pretrained_path("demo-x2", root=fake_root) == fake_root / "demo-x2.safetensors"
    with pytest.raises(TinySRError, match="unknown pretrained model 'nope'; bundled: demo-x2"):
        pretrained_path("nope", root=fake_root)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", fake_root)
    model, desc = load_network("demo-x2", scale=2)
    assert count_params(model) == 963 and desc.endswith("demo-x2.safetensors")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "demo-x2" in out and "963" in out and "Set5 33.00 (standard)" in out
    assert main(["models", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["params"] == 963 and row["sha256"] == file_sha256(fake_root / "demo-x2.safetensors")


def test_damaged_or_malformed_tables(fake_root):
    path = fake_root / "demo-x2.safetensors"
    data = bytearray(path.read_bytes())
    data[30] ^= 0x20  # inside the header: the tensors' digest cannot see it, the table's sha256 does
    path.write_bytes(bytes(data))
    with pytest.raises(TinySRError, match=r"demo-x2\.safetensors: content does not match the sha256 that models\.json "
                                          r"records for 'demo-x2' \(a damaged install; reinstall tinysr\)$"):
        pretrained_path("demo-x2", root=fake_root)
    path.write_bytes(b"short")
    with pytest.raises(TinySRError, match="5 bytes, but the table says"):
        pretrained_path("demo-x2", root=fake_root)
    table = json.loads((fake_root / "models.json").read_text())
    table["models"][0]["sha256"] = "0" * 63
    (fake_root / "models.json").write_text(json.dumps(table))
    with pytest.raises(TinySRError, match=r"model 'demo-x2' has sha256 '0{63}', not 64 hex digits"):
        list_pretrained(root=fake_root)
    (fake_root / "models.json").write_text(json.dumps({"format": 1, "models": [{"name": "x"}]}))
    with pytest.raises(TinySRError, match="models.json: each model needs exactly the fields"):
        list_pretrained(root=fake_root)
    (fake_root / "models.json").write_text("{")
    with pytest.raises(TinySRError, match="cannot read the pretrained table"):
        list_pretrained(root=fake_root)


def test_models_command_with_the_bundled_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    names = list_pretrained()
    assert all(name in out for name in names) if names else out.startswith("no bundled models yet")


#: The JPEG-aware models' Set5 mean PSNR under bicubic+jpeg75 (standard protocol), measured once when bundled
#: (Set5 is for measuring only; the checkpoints were chosen on held-out training images).
JPEG_MODELS_SET5_JPEG75 = {"tiny-1k-x2-jpeg": (2, 32.8944), "tiny-5k-x2-jpeg": (2, 33.2212),
                           "tiny-1k-x4-jpeg": (4, 27.9060)}


@pytest.mark.parametrize("name", list(JPEG_MODELS_SET5_JPEG75))
def test_jpeg_model_set5_psnr_under_jpeg75_is_pinned(name, data_dir):
    scale, expected = JPEG_MODELS_SET5_JPEG75[name]
    upscaler, _, _ = resolve_upscaler(name, scale=scale)
    images = [(p.stem, img) for p, img in decode_all(image_folder(data_dir / "Set5"), strict=True)]
    report = evaluate(upscaler, images, scale=scale, protocol=PROTOCOLS["standard"], degradation="bicubic+jpeg75")
    assert report.mean["psnr"] == pytest.approx(expected, abs=0.005)
