"""tinysr.data.div2k: reading the official DIV2K layout (downloading is tested in test_download.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinysr.data.div2k import GeneratedLRWarning, archive_names, div2k
from tinysr.data.io import write_image
from tinysr.errors import TinySRError

STEMS = ("0001", "0002", "0003")


def _fake_div2k(root, *, split="train", scales=(2, 3), missing=()):
    """HR 12x12 and official LR for `scales`, leaving out the LR file names in `missing`."""
    for stem in STEMS:
        write_image(_mkdir(root / f"DIV2K_{split}_HR") / f"{stem}.png", np.full((12, 12, 3), int(stem), np.uint8))
        for scale in scales:
            name = f"{stem}x{scale}.png"
            if name not in missing:
                folder = _mkdir(root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}")
                write_image(folder / name, np.zeros((12 // scale, 12 // scale, 3), np.uint8))
    return root


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_official_lr_used_when_present(tmp_path):
    _fake_div2k(tmp_path, scales=(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = div2k(tmp_path, split="train", scales=(2, 3))
    assert images.name == "DIV2K-train" and images.hr_downscale == 1
    assert [p.name for p in images.hr_paths] == ["0001.png", "0002.png", "0003.png"]
    assert sorted(images.lr_paths) == [2, 3]
    assert [p.relative_to(tmp_path).as_posix() for p in images.lr_paths[3]] == [
        "DIV2K_train_LR_bicubic/X3/0001x3.png", "DIV2K_train_LR_bicubic/X3/0002x3.png",
        "DIV2K_train_LR_bicubic/X3/0003x3.png"]


def test_missing_scale_generated_with_warning(tmp_path):
    _fake_div2k(tmp_path, split="valid", scales=(2,))
    with pytest.warns(GeneratedLRWarning, match=r"^DIV2K x4 LR not found under .*DIV2K_valid_LR_bicubic/X4; "
                                               r"LR will be generated with bicubic$"):
        images = div2k(tmp_path, split="valid", scales=(2, 4))
    assert images.name == "DIV2K-valid" and sorted(images.lr_paths) == [2]


def test_incomplete_scale_generated_with_warning(tmp_path):
    _fake_div2k(tmp_path, scales=(2,), missing=("0002x2.png",))
    with pytest.warns(GeneratedLRWarning, match=r"x2 LR incomplete \(2 of 3 files\)"):
        images = div2k(tmp_path, scales=(2,))
    assert images.lr_paths == {}


def test_hr_downscale_never_uses_official_lr(tmp_path):
    _fake_div2k(tmp_path, scales=(2,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = div2k(tmp_path, scales=(2,), hr_downscale=2)
    assert images.lr_paths == {} and images.hr_downscale == 2 and len(images) == 3


def test_hr_missing_says_where_to_put_files(tmp_path):
    with pytest.raises(TinySRError, match=rf"^DIV2K train HR images not found: place DIV2K_train_HR\.zip in "
                                          rf"{tmp_path} .*tinysr prepare div2k --root {tmp_path}.*"
                                          rf"{tmp_path}/DIV2K_train_HR/ holds the PNGs$"):
        div2k(tmp_path)


def test_bad_split(tmp_path):
    with pytest.raises(TinySRError, match=r"split must be one of train, valid, got 'test'"):
        div2k(tmp_path, split="test")


def test_archive_names():
    assert archive_names(splits=("train", "valid"), scales=(2, 4)) == [
        "DIV2K_train_HR.zip", "DIV2K_train_LR_bicubic_X2.zip", "DIV2K_train_LR_bicubic_X4.zip",
        "DIV2K_valid_HR.zip", "DIV2K_valid_LR_bicubic_X2.zip", "DIV2K_valid_LR_bicubic_X4.zip"]
