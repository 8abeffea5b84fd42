"""Safe download and extraction: resumable HTTP download, SHA-256 check, zip extraction that cannot escape its root.

Nothing here knows about a particular dataset; `div2k.prepare_div2k` drives it with the official URL table.

Guarantees:
- a download streams to `<name>.part` and becomes `<name>` only after its SHA-256 matched (when one is known);
  an existing `.part` is resumed with an HTTP Range request (server answers 206) or restarted (server answers 200);
- an archive is checked member by member before anything is written: absolute names, `..` and symlinks are refused;
- extraction goes to a temp folder next to the destination and is renamed into place, and a marker file is written
  last, so an interrupted extraction never looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from tinysr.errors import TinySRError

_CHUNK = 1 << 20


class DownloadError(TinySRError):
    """The network failed (offline, timeout, HTTP error, connection cut); a `.part` file, if any, is kept."""


class UnverifiedDownloadWarning(UserWarning):
    """An archive was used without a known SHA-256 to check it against."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise TinySRError when `path` does not hash to `expected`; warn loudly when `expected` is None."""
    if expected is None:
        warnings.warn(f"{path.name}: no known SHA-256, so this archive is NOT verified; check it yourself",
                      UnverifiedDownloadWarning, stacklevel=2)
        return
    actual = sha256_file(path)
    if actual != expected.lower():
        raise TinySRError(f"{path}: SHA-256 mismatch (got {actual}, expected {expected}); the file is corrupt or "
                          f"not the official one")


# ---------------------------------------------------------------------------------------------------- download


def _open_url(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "tinysr", **({"Range": f"bytes={offset}-"} if offset else {})}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


class DiskError(TinySRError):
    """The download could not be written (a full disk, a read-only folder): kept apart from network errors, which
    are OSErrors too."""


def _write_block(f, block: bytes, part: Path) -> None:
    try:
        f.write(block)
    except OSError as exc:
        raise DiskError(f"{part}: cannot write the download ({exc.strerror or exc}); free space, then run again "
                        "to resume from the bytes already written") from None


def _stream(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (206) or rewrite it from the start (200)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open_url(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # range not satisfiable: the part is complete (or junk; the hash decides)
            return
        raise
    with response:
        resumed = response.status == 206
        if offset and not resumed:
            offset = 0  # the server ignored Range: start again
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        try:
            with open(part, "ab" if resumed else "wb") as f, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5], disable=not progress,
                    leave=False) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    _write_block(f, block, part)
                    bar.update(len(block))
        except OSError as exc:  # opening or closing the part (its last flush can meet a full disk); network errors pass
            if isinstance(exc, (ConnectionError, TimeoutError)):
                raise
            raise DiskError(f"{part}: cannot write the download ({exc.strerror or exc})") from None
    received = part.stat().st_size
    if total is not None and received != total:  # read() returns b"" at a cut connection instead of raising
        raise ConnectionError(f"connection closed after {received:,} of {total:,} bytes; run again to resume")


def download(url: str, dest: Path, *, sha256: str | None, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download `url` to `dest` via `dest.part` (resumed when present), verify, then rename into place.

    A part whose hash does not match is deleted, so the next call starts clean. Network failures raise one
    `DownloadError` line naming the URL; the caller adds where to put a manual download.
    """
    part = dest.with_name(dest.name + ".part")
    try:
        _stream(url, part, timeout=timeout, progress=progress)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        reason = " ".join(str(getattr(err, "reason", None) or err or type(err).__name__).split())
        raise DownloadError(f"{url}: download failed ({reason})") from err
    try:
        verify_sha256(part, sha256)
    except TinySRError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------------------------------- extraction


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member may not be extracted, or None when it is a plain file or folder inside the root."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symlink"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "climbs out with '..'"
    return None


def check_zip_members(archive: Path, zf: zipfile.ZipFile, dest: Path) -> None:
    """Refuse the whole archive when any member is unsafe or would resolve outside `dest`."""
    root = dest.resolve()
    for info in zf.infolist():
        reason = _unsafe_reason(info)
        if reason is None and not (root / info.filename).resolve().is_relative_to(root):
            reason = "resolves outside the destination"
        if reason is None and (root / info.filename).resolve() == archive.resolve():
            reason = "would replace the archive being extracted"  # --root holds the zips: a source and a destination
        if reason:
            raise TinySRError(f"{archive}: refusing to extract, member {info.filename!r} {reason}")


def _merge_into(src: Path, dst: Path) -> None:
    """Move the tree `src` into `dst` by renames: new entries move whole, existing folders merge, files replace."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if target.is_dir() and entry.is_dir() and not target.is_symlink():
            _merge_into(entry, target)
        else:
            os.replace(entry, target)


def marker_path(dest: Path, archive_name: str) -> Path:
    """The file whose presence says `archive_name` was fully extracted into `dest`."""
    return dest / f".{archive_name}.extracted"


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest` safely; skip when its marker exists; write the marker last."""
    marker = marker_path(dest, archive.name)
    if marker.exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            check_zip_members(archive, zf, dest)
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".tmp-extract-{archive.stem}-"))
            try:
                zf.extractall(tmp)
                _merge_into(tmp, dest)
            except OSError as exc:  # a full disk: nothing is marked extracted, the next run starts again
                raise TinySRError(f"{archive}: cannot extract into {dest} ({exc.strerror or exc}); free space and "
                                  "run again") from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise TinySRError(f"{archive}: not a valid zip archive ({err})") from err
    marker.write_text(f"{archive.name}\n")
