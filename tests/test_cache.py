"""Tests for tinysr.data.cache: hits, invalidation, interrupted writes, corrupt files, official LR, real data."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinysr.data.cache import PairedImages, cache_key, concat, load_pairs
from tinysr.data.degrade import degrade, mod_crop, shrink_hr
from tinysr.data.folder import UnreadableImagesWarning, image_folder
from tinysr.data.imageset import ImageSet
from tinysr.data.io import read_image, write_image
from tinysr.errors import TinySRError

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / os.environ.get("TINYSR_DATA", "../shared/data")).resolve()
T91_FEW = ("t1.png", "t10.png", "tt1.png")  # 3 small training images (copied to tmp when a test touches them)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A private copy of 3 T91 images, so tests may touch and corrupt files."""
    root = tmp_path / "images"
    root.mkdir()
    for name in T91_FEW:
        shutil.copy2(DATA / "T91" / name, root / name)
    return root


def _load(image_set: ImageSet, cache: Path, **kwargs) -> PairedImages:
    return load_pairs(image_set, scale=kwargs.pop("scale", 3), cache_dir=cache, progress=False, **kwargs)


def test_first_load_builds_second_hits_with_equal_arrays(folder, tmp_path):
    image_set = image_folder(folder)
    first = _load(image_set, tmp_path / "cache")
    second = _load(image_set, tmp_path / "cache")
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert first.cache_path == second.cache_path and first.names == ("t1", "t10", "tt1")
    assert sorted(p.name for p in first.cache_path.iterdir()) == [".lock", "hr.npy", "index.json", "lr.npy"]
    for path, hr, lr, hr2, lr2 in zip(image_set.hr_paths, first.hr, first.lr, second.hr, second.lr):
        expect_hr = mod_crop(read_image(path)[0], 3)
        assert hr.dtype == np.uint8 and hr.shape == expect_hr.shape and (hr == expect_hr).all()
        assert (lr == degrade(expect_hr, 3, "bicubic")).all()
        assert (hr2 == hr).all() and (lr2 == lr).all()
        assert isinstance(hr2, np.memmap) and not hr2.flags.writeable


def test_touching_a_source_invalidates(folder, tmp_path):
    image_set = image_folder(folder)
    first = _load(image_set, tmp_path / "cache")
    stat = (folder / "t10.png").stat()
    os.utime(folder / "t10.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = _load(image_set, tmp_path / "cache")
    assert not again.cache_hit and again.cache_path != first.cache_path


def test_other_degradation_or_scale_is_another_entry(folder, tmp_path):
    image_set = image_folder(folder)
    bicubic = _load(image_set, tmp_path / "cache")
    area = _load(image_set, tmp_path / "cache", degradation="cv2-area")
    x2 = _load(image_set, tmp_path / "cache", scale=2)
    assert not area.cache_hit and not x2.cache_hit
    assert len({bicubic.cache_path, area.cache_path, x2.cache_path}) == 3
    assert not all((a == b).all() for a, b in zip(bicubic.lr, area.lr))
    assert _load(image_set, tmp_path / "cache").cache_hit


@pytest.mark.parametrize("damage", ["no_index", "truncated_lr", "truncated_hr", "garbage_index", "foreign_key",
                                    "flipped_hr", "flipped_lr", "empty_hr"])
def test_interrupted_write_is_rebuilt_not_read(folder, tmp_path, damage):
    image_set = image_folder(folder)
    good = _load(image_set, tmp_path / "cache")
    reference = [np.array(lr) for lr in good.lr]
    entry = good.cache_path
    index = json.loads((entry / "index.json").read_text())
    if damage == "no_index":  # data written, killed before the index
        (entry / "index.json").unlink()
    elif damage.startswith("truncated"):
        target = entry / f"{damage.split('_')[1]}.npy"
        target.write_bytes(target.read_bytes()[:-100])
    elif damage.startswith("flipped"):  # a garbled array of the right size: only the recorded sha256 sees it
        target = entry / f"{damage.split('_')[1]}.npy"
        data = bytearray(target.read_bytes())
        data[-7] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "empty_hr":  # a 0-byte hr.npy used to block every run until deleted by hand
        (entry / "hr.npy").write_bytes(b"")
    elif damage == "garbage_index":
        (entry / "index.json").write_text('{"format": 1, "key"')
    else:
        (entry / "index.json").write_text(json.dumps(index | {"key": "0" * 64}))
    rebuilt = _load(image_set, tmp_path / "cache")
    assert not rebuilt.cache_hit
    assert all((a == b).all() for a, b in zip(rebuilt.lr, reference))
    assert _load(image_set, tmp_path / "cache").cache_hit
    assert not list(entry.glob("*.tmp"))


def test_corrupt_png_skipped_with_count_also_on_hit(folder, tmp_path):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    image_set = image_folder(folder)
    with pytest.warns(UnreadableImagesWarning, match=r"skipped 1 unreadable image\(s\): broken.png"):
        first = _load(image_set, tmp_path / "cache")
    assert first.names == ("t1", "t10", "tt1") and first.skipped == (str(folder / "broken.png"),)
    with pytest.warns(UnreadableImagesWarning, match=r"skipped 1 undecodable image file\(s\)"):
        assert _load(image_set, tmp_path / "cache").cache_hit
    with pytest.raises(TinySRError, match="broken.png"):
        _load(image_set, tmp_path / "cache", strict=True)


def test_official_lr_is_used_and_size_checked(folder, tmp_path):
    hr_set = image_folder(folder)
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    lr_paths = []
    for path in hr_set.hr_paths:  # "official" LR made with another degradation, so we can tell it was used
        lr_paths.append(lr_dir / path.name)
        write_image(lr_paths[-1], degrade(read_image(path)[0], 3, "nearest"))
    official = ImageSet(name="official", hr_paths=hr_set.hr_paths, lr_paths={3: tuple(lr_paths)})
    pairs = _load(official, tmp_path / "cache")
    assert pairs.degradation == "official" and "official" in pairs.cache_path.name
    for path, lr in zip(lr_paths, pairs.lr):
        assert (lr == read_image(path)[0]).all()
    write_image(lr_paths[1], np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(TinySRError, match=r"t10.png: LR size 5x5 is not HR/3"):
        _load(official, tmp_path / "cache")
    shrunk = ImageSet(name="shrunk", hr_paths=hr_set.hr_paths, lr_paths={3: tuple(lr_paths)}, hr_downscale=2)
    pairs = _load(shrunk, tmp_path / "cache")  # shrunk HR: the official LR no longer applies, bicubic is used
    hr = mod_crop(shrink_hr(read_image(hr_set.hr_paths[0])[0], 2), 3)
    assert pairs.degradation == "bicubic" and (pairs.hr[0] == hr).all()
    assert (pairs.lr[0] == degrade(hr, 3, "bicubic")).all()


def test_cache_dir_from_environment(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "env-cache"))
    pairs = load_pairs(image_folder(folder), scale=2, progress=False)
    assert pairs.cache_path.parent == tmp_path / "env-cache"


def test_bad_options(folder, tmp_path):
    image_set = image_folder(folder)
    with pytest.raises(TinySRError, match="unknown degradation 'box'"):
        _load(image_set, tmp_path / "cache", degradation="box")
    with pytest.raises(TinySRError, match="scale must be a positive int"):
        _load(image_set, tmp_path / "cache", scale=0)
    with pytest.raises(TinySRError, match="missing.png: cannot read image file"):
        cache_key(ImageSet(name="x", hr_paths=(folder / "missing.png",)), scale=2, degradation="bicubic")
    with pytest.raises(TinySRError, match="different hr_downscale"):
        concat(image_set, ImageSet(name="y", hr_paths=image_set.hr_paths, hr_downscale=2))
    assert not (tmp_path / "cache").exists()


def test_real_data_t91_bsd200_train_bsd100_val(tmp_path):
    """The classic 291-image training set as ONE set (here 3 + 3 images to stay fast) and BSD100 for validation."""
    t91, bsd200, bsd100 = (image_folder(DATA / name) for name in ("T91", "BSD200", "BSD100"))
    assert (len(t91), len(bsd200), len(bsd100)) == (91, 200, 100)
    train_full = concat(t91, bsd200, name="T91+BSD200")
    assert len(train_full) == 291 and train_full.hr_paths[91] == bsd200.hr_paths[0]
    few = lambda s: ImageSet(name=s.name, hr_paths=s.hr_paths[:3])  # noqa: E731
    train = concat(few(t91), few(bsd200), name="T91+BSD200")
    timings = {}
    for run in ("cold", "cached"):
        start = time.perf_counter()
        pairs = load_pairs(train, scale=2, cache_dir=tmp_path, progress=False)
        val = load_pairs(few(bsd100), scale=2, cache_dir=tmp_path, progress=False)
        timings[run] = time.perf_counter() - start
        assert pairs.cache_hit == val.cache_hit == (run == "cached")
    print(f"\nT91+BSD200 (6 images) + BSD100 (3): cold {timings['cold']:.3f} s, cached {timings['cached']:.4f} s")
    assert pairs.names == ("t1", "t10", "t11", "100075", "100080", "100098")
    assert pairs.hr[3].shape == (320, 480, 3) and pairs.lr[3].shape == (160, 240, 3)  # 321x481 mod-cropped
    assert val.names == ("101085", "101087", "102061") and val.lr[0].shape == (240, 160, 3)  # portrait
    assert timings["cached"] < timings["cold"]


def test_an_image_smaller_than_the_scale_is_named(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.new("RGB", (1, 40)).save(folder / "thin.png")  # 1 pixel wide: no x2 LR exists
    with pytest.raises(TinySRError, match=r"thin\.png: image of size 40x1 is smaller than scale x2"):
        load_pairs(image_folder(folder), scale=2, cache_dir=tmp_path / "cache", progress=False)


def test_codec_pipelines_are_keyed_on_the_full_name_and_the_range_s_seed(folder, tmp_path):
    image_set = image_folder(folder)
    keys = {name: cache_key(image_set, scale=2, degradation=name)
            for name in ("bicubic", "bicubic+jpeg75", "bicubic+jpeg30-95", "bicubic+jpeg30-90", "bicubic+webp75")}
    assert len(set(keys.values())) == 5
    ranged = "bicubic+jpeg30-95"
    assert cache_key(image_set, scale=2, degradation=ranged, seed=1) != keys[ranged]
    assert cache_key(image_set, scale=2, degradation="bicubic+jpeg75", seed=1) == keys["bicubic+jpeg75"]  # no draw


def test_a_range_cache_is_each_image_s_own_draw_and_deterministic(folder, tmp_path):
    image_set = image_folder(folder)
    first = _load(image_set, tmp_path / "cache", scale=2, degradation="bicubic+jpeg30-95")
    again = _load(image_set, tmp_path / "other", scale=2, degradation="bicubic+jpeg30-95")
    seeded = _load(image_set, tmp_path / "cache", scale=2, degradation="bicubic+jpeg30-95", degradation_seed=1)
    assert first.degradation == "bicubic+jpeg30-95" and not seeded.cache_hit
    for name, hr, lr, lr_again in zip(first.names, first.hr, first.lr, again.lr):
        assert (lr == degrade(hr, 2, "bicubic+jpeg30-95", seed=0, image_id=name)).all() and (lr == lr_again).all()
    assert not all((a == b).all() for a, b in zip(first.lr, seeded.lr))
