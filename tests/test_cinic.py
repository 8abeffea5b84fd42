"""tinysr.data.cinic: balanced seeded subset, square HR, manifest, atomic output."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinysr
from tinysr.data.cinic import prepare_cinic, square_hr
from tinysr.data.io import read_image, write_image
from tinysr.errors import TinySRError
from tinysr.resize import imresize, to_uint8

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _fake_cinic(root, *, n_per_class=12, short_class=None):
    """CINIC-like tree root/train/<class>/<class>_<i>.png with varied tiny sizes; `short_class` gets 4 images."""
    rng = np.random.default_rng(123)
    sizes = [(8, 8), (6, 10), (12, 7), (9, 9)]
    for c, name in enumerate(CLASSES):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for i in range(4 if name == short_class else n_per_class):
            h, w = sizes[(c + i) % len(sizes)]
            write_image(folder / f"cifar10-train-{c * 100 + i:04d}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
    return root


@pytest.fixture(scope="module")
def cinic_src(tmp_path_factory):
    return _fake_cinic(tmp_path_factory.mktemp("cinic"))


def test_balanced_subset_and_sizes(tmp_path, cinic_src):
    manifest = prepare_cinic(cinic_src, tmp_path / "out", per_class=(5, 2), hr_size=16, seed=0, progress=False)
    out = tmp_path / "out"
    train, val = sorted((out / "train").iterdir()), sorted((out / "val").iterdir())
    assert len(train) == 50 and len(val) == 20
    for name in CLASSES:
        assert sum(p.name.startswith(f"{name}_") for p in train) == 5
        assert sum(p.name.startswith(f"{name}_") for p in val) == 2
    assert manifest["classes"] == {name: {"train": 5, "val": 2} for name in CLASSES}
    assert {p.name for p in train}.isdisjoint(p.name for p in val)
    img, notes = read_image(train[0])
    assert img.shape == (16, 16, 3) and notes == []
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["tinysr_version"] == tinysr.__version__ and manifest["class_root"] == "train"
    assert manifest["files"]["train"][0]["source"].startswith("airplane/cifar10-train-")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left


def test_seed_determinism(tmp_path, cinic_src):
    a = prepare_cinic(cinic_src, tmp_path / "a", per_class=(3, 1), hr_size=8, seed=7, progress=False)
    b = prepare_cinic(cinic_src, tmp_path / "b", per_class=(3, 1), hr_size=8, seed=7, progress=False)
    c = prepare_cinic(cinic_src, tmp_path / "c", per_class=(3, 1), hr_size=8, seed=8, progress=False)
    assert a == b and a["files"] != c["files"]
    first = a["files"]["train"][0]["file"]
    np.testing.assert_array_equal(read_image(tmp_path / "a" / first)[0], read_image(tmp_path / "b" / first)[0])


def test_class_parent_accepted(tmp_path, cinic_src):
    manifest = prepare_cinic(cinic_src / "train", tmp_path / "out", per_class=(1, 1), hr_size=8, progress=False)
    assert manifest["class_root"] == "." and len(manifest["files"]["val"]) == 10


def test_too_few_images_names_class(tmp_path):
    src = _fake_cinic(tmp_path / "src", n_per_class=6, short_class="frog")
    with pytest.raises(TinySRError, match=r"^class 'frog' has 4 images, needs 5 \(4 train \+ 1 val per class\)$"):
        prepare_cinic(src, tmp_path / "out", per_class=(4, 1), hr_size=8, progress=False)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_refuses_non_empty_out_without_force(tmp_path, cinic_src):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(TinySRError, match=r"out: folder is not empty; pass force=True \(CLI --force\)"):
        prepare_cinic(cinic_src, out, per_class=(1, 0), hr_size=8, progress=False)
    assert (out / "keep.txt").exists()
    prepare_cinic(cinic_src, out, per_class=(1, 0), hr_size=8, force=True, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train", "val"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_square_hr_short_side_then_centre_crop():
    img = np.random.default_rng(0).integers(0, 256, (6, 10, 3), np.uint8)
    out = square_hr(img, 12)
    expected = to_uint8(imresize(img.astype(np.float64), output_shape=(12, 20)))[:, 4:16]
    np.testing.assert_array_equal(out, expected)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(square_hr(img, 6), img[:, 2:8])  # already the right short side: crop only


def test_cli_prepare_cinic(tmp_path, cinic_src, capsys):
    from tinysr.cli import main

    args = ["prepare", "cinic", "--src", str(cinic_src), "--out", str(tmp_path / "out"), "--per-class", "2", "1",
            "--hr-size", "8", "--seed", "3"]
    assert main(args) == 0
    assert capsys.readouterr().out == f"wrote 20 train + 10 val images (8x8) from 10 classes to {tmp_path / 'out'}\n"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["seed"] == 3
    assert main(args) == 2  # out is not empty now
    assert capsys.readouterr().err == (f"tinysr: error: {tmp_path / 'out'}: folder is not empty; pass force=True "
                                       f"(CLI --force) to replace it\n")
    assert main(args + ["--force"]) == 0
