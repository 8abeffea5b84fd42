"""tinysr.data.folder: image_folder, scan_folder and decode_all."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinysr.data.folder import (SkippedFilesWarning, UnreadableImagesWarning, decode_all, image_folder,
                                skipped_files_message)
from tinysr.data.imageset import ImageSet
from tinysr.data.io import write_image
from tinysr.errors import TinySRError


def _img(value: int) -> np.ndarray:
    return np.full((4, 5, 3), value, np.uint8)


def test_sorted_and_flat_by_default(tmp_path):
    for name, value in [("b.png", 2), ("a.jpg", 1), ("C.BMP", 3)]:
        write_image(tmp_path / name.lower(), _img(value))
    (tmp_path / "b.png").rename(tmp_path / "b.PNG")  # upper-case suffix is still an image
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "sub" / "d.png", _img(4))  # not entered without recursive=True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = image_folder(tmp_path, name="mine")
    assert isinstance(images, ImageSet) and images.name == "mine" and images.lr_paths == {}
    assert [p.name for p in images.hr_paths] == ["a.jpg", "b.PNG", "c.bmp"]


def test_recursive_and_default_name(tmp_path):
    root = tmp_path / "photos"
    (root / "z").mkdir(parents=True)
    (root / "a").mkdir()
    write_image(root / "z" / "1.png", _img(1))
    write_image(root / "a" / "2.png", _img(2))
    write_image(root / "m.png", _img(3))
    images = image_folder(root, recursive=True)
    assert images.name == "photos"
    assert [p.relative_to(root).as_posix() for p in images.hr_paths] == ["a/2.png", "m.png", "z/1.png"]
    assert [p.name for p in image_folder(root).hr_paths] == ["m.png"]


def test_non_image_files_reported(tmp_path):
    write_image(tmp_path / "x.png", _img(1))
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.warns(SkippedFilesWarning, match=r"^skipped 2 non-image files: a\.csv, notes\.txt$"):
        images = image_folder(tmp_path)
    assert len(images) == 1


def test_skipped_message_truncates(tmp_path):
    others = [tmp_path / f"f{i}.txt" for i in range(7)]
    assert skipped_files_message(others, tmp_path) == (
        "skipped 7 non-image files: f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, ... and 2 more")
    assert skipped_files_message(others[:1], tmp_path) == "skipped 1 non-image file: f0.txt"


def test_empty_and_missing_folder(tmp_path):
    with pytest.raises(TinySRError, match=rf"^{tmp_path}: no images .* in this folder$"):
        image_folder(tmp_path)
    with pytest.raises(TinySRError, match=r"nowhere: image folder not found$"):
        image_folder(tmp_path / "nowhere")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(TinySRError, match=r"f\.png: not a folder$"):
        image_folder(tmp_path / "f.png")


def _folder_with_corrupt(tmp_path):
    write_image(tmp_path / "a.png", _img(10))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_image(tmp_path / "c.png", _img(30))
    return image_folder(tmp_path, name="mix")


def test_decode_all_skips_corrupt_with_count(tmp_path):
    images = _folder_with_corrupt(tmp_path)
    with pytest.warns(UnreadableImagesWarning, match=r"^mix: skipped 1 unreadable image\(s\): b\.png \(.+\)$"):
        decoded = list(decode_all(images))
    assert [p.name for p, _ in decoded] == ["a.png", "c.png"]
    assert [int(img[0, 0, 0]) for _, img in decoded] == [10, 30]


def test_decode_all_strict_raises_on_first(tmp_path):
    images = _folder_with_corrupt(tmp_path)
    seen = []
    with pytest.raises(TinySRError, match=r"b\.png: cannot read image"):
        for path, _ in decode_all(images, strict=True):
            seen.append(path.name)
    assert seen == ["a.png"]


def test_decode_all_clean_set_no_warning(tmp_path):
    write_image(tmp_path / "a.png", _img(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = list(decode_all(image_folder(tmp_path)))
    assert len(decoded) == 1 and decoded[0][1].shape == (4, 5, 3)


def test_real_set5(data_dir):
    images = image_folder(data_dir / "Set5")
    assert images.name == "Set5"
    assert [p.stem for p in images.hr_paths] == ["baby", "bird", "butterfly", "head", "woman"]
    shapes = [img.shape for _, img in decode_all(images, strict=True)]
    assert shapes == [(512, 512, 3), (288, 288, 3), (256, 256, 3), (280, 280, 3), (344, 228, 3)]
