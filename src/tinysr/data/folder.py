"""A folder of images as an `ImageSet`, and robust decoding of any `ImageSet`.

Nothing is dropped silently: files that are not images (by suffix) and images that cannot be decoded are reported
with a warning whose message is the one line the CLI prints, e.g. "skipped 2 non-image files: a.txt, b.csv".
The warnings have their own classes so a caller can collect them (`warnings.catch_warnings(record=True)`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from tinysr.data.imageset import ImageSet
from tinysr.data.io import IMAGE_SUFFIXES, read_image
from tinysr.errors import TinySRError

_MAX_NAMES = 5  # file names listed in a warning before "... and N more"


class SkippedFilesWarning(UserWarning):
    """Files in an image folder that are not images (by suffix) were left out."""


class UnreadableImagesWarning(UserWarning):
    """Images that could not be decoded were skipped by `decode_all`."""


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown if len(names) <= _MAX_NAMES else f"{shown}, ... and {len(names) - _MAX_NAMES} more"


def is_image_file(path: Path) -> bool:
    """True when the suffix (any case) is one of `IMAGE_SUFFIXES`."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def scan_folder(root: str | os.PathLike, *, recursive: bool = False) -> tuple[list[Path], list[Path]]:
    """Split the files under `root` into (images, others), each sorted by path relative to `root`.

    Only regular files count; with recursive=False sub-folders are not entered. Raises TinySRError when `root` is
    missing or not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise TinySRError(f"{root}: image folder not found" if not root.exists() else f"{root}: not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = sorted((p for p in candidates if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    images = [p for p in files if is_image_file(p)]
    others = [p for p in files if not is_image_file(p)]
    return images, others


def skipped_files_message(others: list[Path], root: str | os.PathLike) -> str:
    """The one line reported for non-image files, e.g. "skipped 2 non-image files: a.txt, sub/b.csv"."""
    names = [p.relative_to(root).as_posix() for p in others]
    return f"skipped {len(names)} non-image file{'s' if len(names) != 1 else ''}: {_name_list(names)}"


def image_folder(root: str | os.PathLike, *, recursive: bool = False, name: str | None = None) -> ImageSet:
    """All images in `root` (sorted by relative path) as an HR-only `ImageSet` named `name` (default: folder name).

    Non-image files are reported with one `SkippedFilesWarning`. Raises TinySRError naming the folder when it is
    missing or holds no image.
    """
    root = Path(root)
    images, others = scan_folder(root, recursive=recursive)
    if others:
        warnings.warn(skipped_files_message(others, root), SkippedFilesWarning, stacklevel=2)
    if not images:
        where = "in or below" if recursive else "in"
        raise TinySRError(f"{root}: no images ({' '.join(IMAGE_SUFFIXES)}) {where} this folder")
    return ImageSet(name=name or root.resolve().name, hr_paths=tuple(images))


def decode_all(image_set: ImageSet, *, strict: bool = False,
               max_pixels: int | None = None) -> Iterator[tuple[Path, np.ndarray]]:
    """Yield (path, image) for every HR image of `image_set`, image HWC RGB uint8 as from `read_image`.

    strict=False: an unreadable file is skipped, and when the iteration ends one `UnreadableImagesWarning` says
    "skipped N unreadable image(s): x.png (reason), ...". strict=True: the first failure raises its TinySRError.
    """
    failures: list[str] = []
    for path in image_set.hr_paths:
        try:
            image, _notes = read_image(path, max_pixels=max_pixels)
        except TinySRError as err:
            if strict:
                raise
            reason = str(err).removeprefix(f"{path}: cannot read image ")
            failures.append(f"{path.name} {reason}")
            continue
        yield path, image
    if failures:
        warnings.warn(f"{image_set.name}: skipped {len(failures)} unreadable image(s): {_name_list(failures)}",
                      UnreadableImagesWarning, stacklevel=2)
