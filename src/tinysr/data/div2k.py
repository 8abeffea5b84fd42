"""DIV2K (Agustsson & Timofte, NTIRE 2017) in its official layout, and `prepare_div2k` to download and unpack it.

Official layout under `root` (what the official zips unpack to):
    DIV2K_train_HR/0001.png ... 0800.png            DIV2K_valid_HR/0801.png ... 0900.png
    DIV2K_train_LR_bicubic/X2/0001x2.png ...         DIV2K_valid_LR_bicubic/X4/0801x4.png ...
The official LR images are MATLAB bicubic downscales of the full HR; they are used when every file of a scale is
present, otherwise that scale's LR is generated later by our degradation (with a warning saying so).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from tinysr.data.download import DownloadError, download, extract_zip, marker_path, verify_sha256
from tinysr.data.imageset import ImageSet
from tinysr.errors import TinySRError

OFFICIAL_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
SPLITS = ("train", "valid")
OFFICIAL_SCALES = (2, 3, 4)

# SHA-256 (and size in bytes) of each official archive, from tensorflow/datasets
# `tensorflow_datasets/url_checksums/div2k.txt` @ 333639b37af6 (the TFDS DIV2K builder's recorded checksums).
DIV2K_SHA256: dict[str, str] = {
    "DIV2K_train_HR.zip": "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",  # 3530603713 B
    "DIV2K_valid_HR.zip": "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",  # 448993893 B
    "DIV2K_train_LR_bicubic_X2.zip": "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",  # 925390592
    "DIV2K_train_LR_bicubic_X3.zip": "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",  # 427847282
    "DIV2K_train_LR_bicubic_X4.zip": "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",  # 246914039
    "DIV2K_valid_LR_bicubic_X2.zip": "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",  # 117763600
    "DIV2K_valid_LR_bicubic_X3.zip": "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",  # 54513392
    "DIV2K_valid_LR_bicubic_X4.zip": "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",  # 31505881
}


class GeneratedLRWarning(UserWarning):
    """Official DIV2K LR images are missing for a scale, so LR will be generated with bicubic."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise TinySRError(f"DIV2K split must be one of {', '.join(SPLITS)}, got {split!r}")


def hr_dir(root: Path, split: str) -> Path:
    return root / f"DIV2K_{split}_HR"


def lr_dir(root: Path, split: str, scale: int) -> Path:
    return root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}"


def archive_names(*, splits: tuple[str, ...], scales: tuple[int, ...]) -> list[str]:
    """Official zip names, HR first: e.g. DIV2K_train_HR.zip, DIV2K_train_LR_bicubic_X2.zip, ..."""
    names = []
    for split in splits:
        _check_split(split)
        names.append(f"DIV2K_{split}_HR.zip")
        names += [f"DIV2K_{split}_LR_bicubic_X{scale}.zip" for scale in scales]
    return names


def _hr_paths(root: Path, split: str) -> tuple[Path, ...]:
    folder = hr_dir(root, split)
    paths = tuple(sorted(folder.glob("*.png"))) if folder.is_dir() else ()
    if not paths:
        raise TinySRError(f"DIV2K {split} HR images not found: place DIV2K_{split}_HR.zip in {root} and run "
                          f"`tinysr prepare div2k --root {root}`, or unzip it so that {folder}/ holds the PNGs")
    return paths


def _official_lr(root: Path, split: str, scale: int, hr_paths: tuple[Path, ...]) -> tuple[Path, ...] | None:
    """The official LR files aligned with `hr_paths`, or None (with a warning) when any is missing."""
    folder = lr_dir(root, split, scale)
    paths = tuple(folder / f"{hr.stem}x{scale}.png" for hr in hr_paths)
    present = sum(p.is_file() for p in paths)
    if present == len(paths):
        return paths
    found = "not found" if present == 0 else f"incomplete ({present} of {len(paths)} files)"
    warnings.warn(f"DIV2K x{scale} LR {found} under {folder}; LR will be generated with bicubic",
                  GeneratedLRWarning, stacklevel=3)
    return None


def div2k(root: str | os.PathLike, *, split: str = "train", scales: tuple[int, ...] = (2,),
          hr_downscale: int = 1) -> ImageSet:
    """DIV2K `split` ("train" or "valid") under `root` as an ImageSet named "DIV2K-<split>".

    scales: the integer scales wanted; a scale gets official LR paths when all its files exist (2, 3, 4 ship
        officially), otherwise it is left out of `lr_paths` and generated downstream (GeneratedLRWarning).
    hr_downscale: 1, 2 or 4 (Table I size variants). With 2 or 4 the official LR cannot be used, since it was made
        from the full-size HR, so no LR paths are returned and all LR is generated from the shrunk HR.
    Raises TinySRError saying where to put the files when the HR folder is missing or empty.
    """
    _check_split(split)
    root = Path(root)
    hr_paths = _hr_paths(root, split)
    lr_paths: dict[int, tuple[Path, ...]] = {}
    if hr_downscale == 1:
        for scale in scales:
            official = _official_lr(root, split, int(scale), hr_paths)
            if official is not None:
                lr_paths[int(scale)] = official
    return ImageSet(name=f"DIV2K-{split}", hr_paths=hr_paths, lr_paths=lr_paths, hr_downscale=hr_downscale)


def _fetch(name: str, root: Path, *, base_url: str, sha256: str | None, timeout: float, progress: bool) -> Path:
    """The archive `name` in `root`: one placed there by hand (verified) or downloaded now."""
    archive = root / name
    if archive.exists():
        verify_sha256(archive, sha256)
        return archive
    url = f"{base_url.rstrip('/')}/{name}"
    try:
        return download(url, archive, sha256=sha256, timeout=timeout, progress=progress)
    except DownloadError as err:
        raise DownloadError(f"{err}; download it by hand and place {name} in {root}, then run again") from err


def prepare_div2k(root: str | os.PathLike, *, scales: tuple[int, ...] = OFFICIAL_SCALES,
                  splits: tuple[str, ...] = SPLITS, base_url: str = OFFICIAL_BASE_URL,
                  checksums: dict[str, str] | None = None, timeout: float = 60.0,
                  progress: bool = True) -> list[str]:
    """Download (or take from `root`), verify and extract the official DIV2K zips; returns the archives extracted now.

    Archives already extracted (their marker exists) are skipped; zips already in `root` are used instead of
    downloading. checksums: archive name → SHA-256, default `DIV2K_SHA256`; a name without one is used with an
    UnverifiedDownloadWarning. Zips are kept after extraction.
    """
    root = Path(root)
    checksums = DIV2K_SHA256 if checksums is None else checksums
    bad = [s for s in scales if s not in OFFICIAL_SCALES]
    if bad:
        raise TinySRError(f"--scales: DIV2K ships bicubic LR for x2, x3, x4 only, got {bad}")
    root.mkdir(parents=True, exist_ok=True)
    extracted = []
    for name in archive_names(splits=tuple(splits), scales=tuple(scales)):
        if marker_path(root, name).exists():
            continue
        archive = _fetch(name, root, base_url=base_url, sha256=checksums.get(name), timeout=timeout,
                         progress=progress)
        extract_zip(archive, root)
        extracted.append(name)
    return extracted
