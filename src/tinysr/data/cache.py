"""The decoded cache: decode, shrink, mod-crop and degrade every image once, then memory-map the result.

Convention: `PairedImages.hr[i]` and `.lr[i]` are HWC RGB uint8 arrays (0..255), read-only memory-mapped views,
with ``hr.shape == (lr.shape[0] * scale, lr.shape[1] * scale, 3)``.

On disk one cache entry is a folder ``<cache_dir>/<set name>-x<scale>-<degradation>-<key[:16]>/`` holding
  hr.npy      all HR pixels as ONE flat uint8 array (image after image),
  lr.npy      the same for LR,
  index.json  names, shapes and byte offsets of every image, plus the full key.
The key is the sha256 of everything the pixels depend on: the source files (path, size, mtime), the scale, the
degradation (its full name, e.g. ``bicubic+jpeg30-95``, and, when a stage draws a quality per image, the
degradation seed), `hr_downscale`, `IMRESIZE_VERSION` and `CACHE_FORMAT`. Each file is written atomically
(`tinysr.atomic`: temp name, fsync, rename), and index.json goes LAST: an entry without a valid index (or whose
arrays do not have the sizes the index says, or whose sha256 differs) is never read back; it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from tinysr import atomic, faults, lock
from tinysr.atomic import atomic_open, atomic_write_bytes
from tinysr.data.degrade import degrade, mod_crop, parse_degradation, shrink_hr
from tinysr.data.folder import UnreadableImagesWarning, decode_all
from tinysr.data.imageset import ImageSet
from tinysr.data.io import read_image
from tinysr.errors import TinySRError, one_line
from tinysr.resize import IMRESIZE_VERSION

CACHE_FORMAT = 2  # 2: index.json records each array's sha256, checked on every open
_INDEX = "index.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairedImages:
    """Aligned HR/LR pairs (HWC RGB uint8, memory-mapped) and where they came from."""

    names: tuple[str, ...]
    hr: list[np.ndarray]
    lr: list[np.ndarray]
    scale: int
    degradation: str  # "official" when the dataset's own LR files were used
    cache_path: Path
    cache_hit: bool
    skipped: tuple[str, ...] = ()  # source files that could not be decoded

    def __len__(self) -> int:
        return len(self.names)


def concat(*image_sets: ImageSet, name: str | None = None) -> ImageSet:
    """One ImageSet holding the images of all `image_sets`, in order (e.g. T91 + BSD200 = the 291-image set).

    Official LR files are kept only for scales that every set provides; all sets must share `hr_downscale`.
    """
    if not image_sets:
        raise TinySRError("concat needs at least one image set")
    downscales = {s.hr_downscale for s in image_sets}
    if len(downscales) != 1:
        raise TinySRError(f"cannot concat image sets with different hr_downscale: {sorted(downscales)}")
    scales = set.intersection(*(set(s.lr_paths) for s in image_sets))
    return ImageSet(
        name=name or "+".join(s.name for s in image_sets),
        hr_paths=tuple(p for s in image_sets for p in s.hr_paths),
        lr_paths={k: tuple(p for s in image_sets for p in s.lr_paths[k]) for k in sorted(scales)},
        hr_downscale=downscales.pop(),
    )


def default_cache_dir() -> Path:
    """``$TINYSR_CACHE`` if set, else ``~/.cache/tinysr``."""
    return Path(os.environ.get("TINYSR_CACHE") or Path.home() / ".cache" / "tinysr")


def _official_lr(image_set: ImageSet, scale: int) -> tuple[Path, ...] | None:
    """The dataset's own LR files for `scale`, used only when HR is not shrunk (else they no longer match)."""
    return image_set.lr_paths.get(scale) if image_set.hr_downscale == 1 else None


def _file_stamp(path: Path) -> list:
    try:
        st = path.stat()
    except OSError as exc:
        raise TinySRError(f"{path}: cannot read image file ({exc.strerror})") from None
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def cache_key(image_set: ImageSet, *, scale: int, degradation: str, seed: int = 0) -> str:
    """sha256 (hex) of everything the cached pixels depend on (`seed` only where the degradation draws qualities)."""
    official = _official_lr(image_set, scale)
    random = degradation != "official" and parse_degradation(degradation).is_random
    parts = {
        "format": CACHE_FORMAT,
        "imresize": IMRESIZE_VERSION,
        "scale": scale,
        "degradation": degradation,
        "hr_downscale": image_set.hr_downscale,
        "hr": [_file_stamp(p) for p in image_set.hr_paths],
        "lr": [_file_stamp(p) for p in official] if official else None,
    }
    if random:  # only then, so the keys of existing deterministic entries stay as they were
        parts["degradation_seed"] = seed
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- writing
class _FlatNpyWriter:
    """Append uint8 images to one flat ``.npy`` file `fp`; the header's length is patched in at `finish`.

    numpy pads a v1 header so its size does not depend on the length's digits, so the placeholder header can be
    overwritten in place. `fp` is a `tinysr.atomic.atomic_open` file, renamed into place only after fsync.
    """

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self._header(0)
        self.n_bytes = 0
        self.sha256 = hashlib.sha256()  # of the pixel bytes (not the header): index.json records it

    def _header(self, n: int) -> None:
        d = {"descr": "|u1", "fortran_order": False, "shape": (n,)}
        np.lib.format.write_array_header_1_0(self.fp, d)

    def append(self, img: np.ndarray) -> int:
        """Write `img`'s bytes (C order); return its byte offset in the flat array."""
        offset = self.n_bytes
        data = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
        self.fp.write(data)
        self.sha256.update(data)
        self.n_bytes += img.size
        return offset

    def finish(self) -> None:
        """Patch the real length into the header (the file is complete after this)."""
        end = self.fp.tell()
        self.fp.seek(0)
        self._header(self.n_bytes)
        if self.fp.tell() + self.n_bytes != end:  # numpy changed its header padding: refuse to write garbage
            raise RuntimeError(".npy header length changed while patching")
        self.fp.seek(end)


def _prepared_pairs(
    image_set: ImageSet, *, scale: int, degradation: str, seed: int, strict: bool, progress: bool,
    max_pixels: int | None = None,
) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """Yield (hr path, HR, LR) per decodable image: 1. shrink HR; 2. mod-crop; 3. degrade or read official LR."""
    official = _official_lr(image_set, scale)
    lr_of = dict(zip(image_set.hr_paths, official)) if official else {}
    decoded = decode_all(image_set, strict=strict, max_pixels=max_pixels)
    bar = tqdm(decoded, total=len(image_set), desc=f"{image_set.name} x{scale}", unit="img", disable=not progress)
    for path, hr in bar:
        try:
            hr = mod_crop(shrink_hr(hr, image_set.hr_downscale), scale)
        except TinySRError as exc:  # e.g. a 1-pixel-wide image at x2: say which file
            raise TinySRError(f"{path}: {exc}") from None
        if path in lr_of:
            lr, _notes = read_image(lr_of[path])
            if lr.shape != (hr.shape[0] // scale, hr.shape[1] // scale, hr.shape[2]):
                raise TinySRError(
                    f"{lr_of[path]}: LR size {lr.shape[1]}x{lr.shape[0]} is not HR/{scale} "
                    f"({hr.shape[1] // scale}x{hr.shape[0] // scale}, HR {path.name})"
                )
        else:
            lr = degrade(hr, scale, degradation, seed=seed, image_id=path.stem)
        yield path, hr, lr


def _build(
    directory: Path, image_set: ImageSet, *, key: str, scale: int, degradation: str, seed: int, strict: bool,
    progress: bool, max_pixels: int | None = None,
) -> None:
    """Decode and degrade every image of `image_set` into `directory` (index written last)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _INDEX).unlink(missing_ok=True)  # an old index must never describe new, half-written data
    index: dict = {"format": CACHE_FORMAT, "key": key, "image_set": image_set.name, "scale": scale,
                   "degradation": degradation, "degradation_seed": seed, "names": [], "hr_shapes": [], "lr_shapes": [],
                   "hr_offsets": [], "lr_offsets": []}  # fmt: skip
    kept = set()
    with atomic_open(directory / "hr.npy") as hr_fp, atomic_open(directory / "lr.npy") as lr_fp:
        hr_out, lr_out = _FlatNpyWriter(hr_fp), _FlatNpyWriter(lr_fp)
        for path, hr, lr in _prepared_pairs(
            image_set, scale=scale, degradation=degradation, seed=seed, strict=strict, progress=progress,
            max_pixels=max_pixels,
        ):
            kept.add(path)
            index["names"].append(path.stem)
            index["hr_shapes"].append(list(hr.shape))
            index["lr_shapes"].append(list(lr.shape))
            index["hr_offsets"].append(hr_out.append(hr))
            index["lr_offsets"].append(lr_out.append(lr))
            faults.point("cache:image")
        if not kept:
            raise TinySRError(f"{image_set.name}: none of its {len(image_set)} image files could be decoded")
        hr_out.finish()
        lr_out.finish()
    index |= {"hr_bytes": hr_out.n_bytes, "lr_bytes": lr_out.n_bytes,
              "hr_sha256": hr_out.sha256.hexdigest(), "lr_sha256": lr_out.sha256.hexdigest(),
              "skipped": [str(p) for p in image_set.hr_paths if p not in kept]}  # fmt: skip
    atomic_write_bytes(directory / _INDEX, json.dumps(index).encode())


# ---------------------------------------------------------------- reading
def _views(flat: np.ndarray, shapes: list, offsets: list) -> list[np.ndarray]:
    out = []
    for shape, offset in zip(shapes, offsets):
        n = int(np.prod(shape))
        if offset + n > flat.size:
            raise ValueError("image extends past the end of the data file")
        out.append(flat[offset : offset + n].reshape(shape))
    return out


def _open(directory: Path, key: str) -> tuple[dict, list[np.ndarray], list[np.ndarray]] | None:
    """Map a complete cache entry, or return None (with a log line) if it is missing, partial or foreign."""
    if not (directory / _INDEX).is_file():
        return None
    try:
        index = json.loads((directory / _INDEX).read_text())
        if index.get("format") != CACHE_FORMAT or index.get("key") != key:
            raise ValueError("index belongs to another key or format")
        hr_flat = np.load(directory / "hr.npy", mmap_mode="r")
        lr_flat = np.load(directory / "lr.npy", mmap_mode="r")
        if hr_flat.shape != (index["hr_bytes"],) or lr_flat.shape != (index["lr_bytes"],):
            raise ValueError("data file size differs from the index")
        for name, flat in (("hr", hr_flat), ("lr", lr_flat)):
            if hashlib.sha256(memoryview(flat)).hexdigest() != index[f"{name}_sha256"]:
                raise ValueError(f"{name}.npy does not match its recorded sha256")
        hr = _views(hr_flat, index["hr_shapes"], index["hr_offsets"])
        lr = _views(lr_flat, index["lr_shapes"], index["lr_offsets"])
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:  # truncated or empty .npy, bad JSON: rebuild
        log.warning("cache entry %s is invalid (%s); rebuilding", directory, exc)
        return None
    return index, hr, lr


def _build_once(directory: Path, image_set: ImageSet, *, key: str, scale: int, degradation: str, seed: int,
                strict: bool, progress: bool, max_pixels: int | None
                ) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """Build the entry under its folder's lock: a second process waits, then reads what the first built; files a
    killed builder left half-written are removed first."""
    try:
        lock.hold(directory, wait=True)
    except TinySRError as exc:
        raise TinySRError(f"{exc}; set TINYSR_CACHE to a writable folder") from None
    try:
        opened = _open(directory, key)  # built by another process while this one waited
        if opened is not None:
            return opened
        log.info("cache miss: building %s", directory)
        for name in ("hr.npy", "lr.npy", _INDEX):
            atomic.remove_stale_temps(directory / name)
        try:
            _build(directory, image_set, key=key, scale=scale, degradation=degradation, seed=seed, strict=strict,
                   progress=progress, max_pixels=max_pixels)
        except OSError as exc:  # a full disk, a read-only TINYSR_CACHE: the temp files are already gone
            raise TinySRError(f"{directory}: cannot write the decoded cache ({one_line(exc.strerror or exc)}); free "
                              "space or set TINYSR_CACHE to a writable folder") from None
        opened = _open(directory, key)
        if opened is None:
            raise TinySRError(f"{directory}: cache entry unreadable right after writing it")
        return opened
    finally:
        lock.release(directory)


def load_pairs(
    image_set: ImageSet,
    *,
    scale: int,
    degradation: str = "bicubic",
    degradation_seed: int = 0,
    cache_dir: Path | str | None = None,
    strict: bool = False,
    progress: bool = True,
    max_pixels: int | None = None,
) -> PairedImages:
    """HR/LR pairs of `image_set` at `scale`, from the cache if a complete entry exists, else built once.

    LR comes from the dataset's official files for `scale` when it has them and ``hr_downscale == 1`` (their size
    is checked to be HR/scale), else from `degradation` (`tinysr.data.degrade.parse_degradation`; a range stage such
as ``jpeg30-95`` draws each image's quality from `degradation_seed` and the file stem). Corrupt image
    files are skipped with a counted warning (or raise with ``strict=True``), also on later cache hits.
    """
    if len(image_set) == 0:
        raise TinySRError(f"{image_set.name}: the image set is empty")
    parse_degradation(degradation, option="degradation")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise TinySRError(f"scale must be a positive int, got {scale!r}")
    used = "official" if _official_lr(image_set, scale) else degradation
    key = cache_key(image_set, scale=scale, degradation=used, seed=degradation_seed)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory = root / f"{image_set.name}-x{scale}-{used}-{key[:16]}".replace(os.sep, "_")
    opened = _open(directory, key)
    hit = opened is not None
    if not hit:
        opened = _build_once(directory, image_set, key=key, scale=scale, degradation=degradation,
                             seed=degradation_seed, strict=strict, progress=progress, max_pixels=max_pixels)
    index, hr, lr = opened
    log.info("cache %s: %s (%d images)", "hit" if hit else "built", directory, len(hr))
    skipped = tuple(index["skipped"])
    if hit and skipped:
        if strict:
            raise TinySRError(f"{skipped[0]}: cannot decode image (strict mode; cached as skipped)")
        warnings.warn(
            f"{image_set.name}: skipped {len(skipped)} undecodable image file(s), e.g. {skipped[0]}",
            UnreadableImagesWarning,
            stacklevel=2,
        )
    return PairedImages(
        names=tuple(index["names"]), hr=hr, lr=lr, scale=scale, degradation=used,
        cache_path=directory, cache_hit=hit, skipped=skipped,
    )  # fmt: skip
