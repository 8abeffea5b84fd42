"""A balanced, seeded subset of CINIC-10 (or any `<class>/<image>` tree) as square HR images: `prepare_cinic`.

The study trains on 256x256 HR / 128x128 LR crops "from CINIC-10". CINIC-10 images are 32x32, so this makes each
HR image by resizing the short side to `hr_size` with tinysr's MATLAB-exact bicubic `imresize` (float path, then
`to_uint8`) and cropping the centre square; with 32x32 sources and hr_size=256 that is an 8x bicubic upscale, so the
HR carries no detail beyond the 32x32 original. That is what the specification asks for; it is written to the
manifest so nobody mistakes it for native-resolution data.

Output (written to `.<out>.XXXX.tmp` next to `out`, renamed to `out` only when complete):
    out/train/<class>_<stem>.png, out/val/<class>_<stem>.png   HWC RGB uint8, hr_size x hr_size
    out/manifest.json   sources (relative to the class root), seed, sizes, per-class counts, tinysr version
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinysr
from tinysr.atomic import make_temp_dir
from tinysr.data.folder import SkippedFilesWarning, scan_folder, skipped_files_message
from tinysr.data.io import read_image, write_image
from tinysr.errors import TinySRError
from tinysr.paths import refuse_overlap
from tinysr.resize import IMRESIZE_VERSION, imresize, to_uint8

SPLITS = ("train", "val")


def class_root(src: Path) -> Path:
    """The folder whose sub-folders are the classes: `src/train` for a CINIC-10 root, else `src` itself."""
    if not src.is_dir():
        raise TinySRError(f"{src}: source folder not found")
    return src / "train" if (src / "train").is_dir() else src


def class_files(root: Path) -> dict[str, list[Path]]:
    """Class name → its image files, both sorted by name; non-image files are reported with a warning."""
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images, others = scan_folder(folder)
        if others:
            warnings.warn(f"{folder.name}: {skipped_files_message(others, folder)}", SkippedFilesWarning,
                          stacklevel=3)
        classes[folder.name] = images
    if not classes:
        raise TinySRError(f"{root}: no class folders (expected <class>/<image> or a CINIC-10 root with train/)")
    return classes


def pick(classes: dict[str, list[Path]], *, n_train: int, n_val: int,
         seed: int) -> dict[str, dict[str, list[Path]]]:
    """Draw n_train + n_val distinct files per class with one `default_rng(seed)`, classes in sorted order.

    Raises TinySRError naming the first class that has too few images, before anything is drawn.
    """
    need = n_train + n_val
    for name, files in classes.items():
        if len(files) < need:
            raise TinySRError(f"class {name!r} has {len(files)} images, needs {need} "
                              f"({n_train} train + {n_val} val per class)")
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, files in classes.items():
        order = rng.choice(len(files), size=need, replace=False)
        chosen[name] = {"train": [files[i] for i in sorted(order[:n_train])],
                        "val": [files[i] for i in sorted(order[n_train:])]}
    return chosen


def square_hr(img: np.ndarray, hr_size: int) -> np.ndarray:
    """HWC RGB uint8 → hr_size x hr_size uint8: short side to hr_size (imresize float path, to_uint8), centre crop."""
    h, w = img.shape[:2]
    short = min(h, w)
    out_h, out_w = (max(hr_size, round(h * hr_size / short)), max(hr_size, round(w * hr_size / short)))
    if (out_h, out_w) != (h, w):
        img = to_uint8(imresize(img.astype(np.float64), output_shape=(out_h, out_w)))
    top, left = (out_h - hr_size) // 2, (out_w - hr_size) // 2
    return np.ascontiguousarray(img[top:top + hr_size, left:left + hr_size])


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise TinySRError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TinySRError(f"{out}: folder is not empty; pass force=True (CLI --force) to replace it")


def _write_images(chosen, root: Path, tmp: Path, *, hr_size: int, max_pixels: int | None,
                  progress: bool) -> dict[str, list[dict]]:
    """Write every chosen image into tmp/<split>/<class>_<stem>.png; returns the manifest's file lists."""
    files: dict[str, list[dict]] = {split: [] for split in SPLITS}
    jobs = [(split, name, path) for name, splits in chosen.items() for split in SPLITS for path in splits[split]]
    for split in SPLITS:
        (tmp / split).mkdir()
    for split, name, path in tqdm(jobs, desc="cinic", unit="img", disable=not progress, leave=False):
        img, _notes = read_image(path, max_pixels=max_pixels)
        target = tmp / split / f"{name}_{path.stem}.png"
        if target.exists():
            raise TinySRError(f"{path}: output name {target.name} is taken by another file of class {name!r}")
        write_image(target, square_hr(img, hr_size))
        files[split].append({"file": f"{split}/{target.name}", "source": path.relative_to(root).as_posix(),
                             "source_size": [int(img.shape[0]), int(img.shape[1])]})
    return files


def _manifest(src: Path, root: Path, chosen, files, *, hr_size: int, seed: int, n_train: int, n_val: int) -> dict:
    return {
        "dataset": "cinic-subset",
        "tinysr_version": tinysr.__version__,
        "source": str(src),
        "class_root": root.relative_to(src).as_posix(),
        "seed": seed,
        "hr_size": hr_size,
        "per_class": {"train": n_train, "val": n_val},
        "hr_method": "short side to hr_size with tinysr.resize.imresize (MATLAB bicubic, float path, to_uint8), "
                     "centre crop",
        "imresize_version": IMRESIZE_VERSION,
        "classes": {name: {split: len(splits[split]) for split in SPLITS} for name, splits in chosen.items()},
        "files": files,
    }


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished tmp folder to `out`; an existing `out` (allowed by the caller) is moved aside first."""
    old = None
    if out.exists():
        old = make_temp_dir(out)
        os.replace(out, old / out.name)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def prepare_cinic(src: str | os.PathLike, out: str | os.PathLike, *, per_class: tuple[int, int] = (80, 10),
                  hr_size: int = 256, seed: int = 0, force: bool = False, max_pixels: int | None = None,
                  progress: bool = True) -> dict:
    """Write a seeded, class-balanced HR subset of `src` to `out`; returns the manifest (also out/manifest.json).

    src: a CINIC-10 root (holding train/<class>/*.png) or any folder of <class>/<image> folders.
    per_class: (train, val) images drawn per class, without overlap. hr_size: side of the square HR images.
    force: replace a non-empty `out`; without it a non-empty `out` raises TinySRError before any work.
    max_pixels: decompression-bomb limit per source image (see `read_image`).
    """
    src, out = Path(src), Path(out)
    n_train, n_val = (int(n) for n in per_class)
    if n_train < 1 or n_val < 0 or hr_size < 1:
        raise TinySRError(f"per_class must be (train >= 1, val >= 0) and hr_size >= 1, got {per_class}, {hr_size}")
    refuse_overlap(source=src, destination=out, source_option="--src", destination_option="--out")
    _check_out(out, force)
    root = class_root(src)
    chosen = pick(class_files(root), n_train=n_train, n_val=n_val, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out)  # mode from the umask (it becomes `out`), unlike tempfile.mkdtemp's 0700
    try:
        files = _write_images(chosen, root, tmp, hr_size=hr_size, max_pixels=max_pixels, progress=progress)
        manifest = _manifest(src, root, chosen, files, hr_size=hr_size, seed=seed, n_train=n_train, n_val=n_val)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
