"""Atomic file writes: a file appears complete or not at all, with the mode an ordinary `open()` would give it.

Every writer in tinysr that replaces a file (weights, run files, images, cache entries, exports) goes through
`atomic_open` or `atomic_write_bytes`:
  1. create a temporary sibling ``.<name>.<random>.tmp`` in the same folder (so the rename stays on one file system);
  2. write it, flush and fsync it;
  3. `os.replace` it onto the target, then fsync the folder so the rename itself survives a power cut.
Any exception (a full disk, Ctrl-C) removes the temporary file and leaves the old target untouched.

Modes follow the umask: 0644 under umask 022, 0600 under umask 077, like a file made by `open(path, "w")`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from tinysr import faults

# Why not tempfile.mkstemp: it creates 0600 files whatever the umask, so shared run folders, bundled weights and
# written images would be private. Passing 0o666 / 0o777 to os.open / os.mkdir lets the kernel apply the umask
# at creation, exactly as open() does, without reading the umask (os.umask can only be read by setting it, which
# races with other threads).
_FILE_MODE, _DIR_MODE = 0o666, 0o777
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TRIES = 100


def _temp_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _create_temp_file(path: Path) -> tuple[int, Path]:
    """A new, empty temporary sibling of `path`, opened for writing: (file descriptor, its path)."""
    for _ in range(_TRIES):
        tmp = _temp_name(path, ".tmp")
        try:
            return os.open(tmp, _FLAGS, _FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name after {_TRIES} tries")


def make_temp_dir(path: str | os.PathLike) -> Path:
    """A new, empty sibling folder of `path` (mode from the umask, unlike `tempfile.mkdtemp`'s 0700).

    For writers that fill a whole folder and then rename it onto `path`; the caller removes it on failure.
    """
    path = Path(path)
    for _ in range(_TRIES):
        tmp = _temp_name(path, ".tmp")
        try:
            os.mkdir(tmp, _DIR_MODE)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name after {_TRIES} tries")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable; a file system that cannot fsync folders is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, *, before_rename: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file to write; when the block ends without error it replaces `path`, else it is removed.

    `before_rename` runs once the temporary file is complete and fsynced, just before the rename (the run folder's
    SIGKILL test waits there; nothing else uses it).
    """
    path = Path(path)
    fd, tmp = _create_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        faults.point(f"before-rename:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    faults.point(f"after-rename:{path.name}")
    _fsync_dir(path.parent)


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Remove the temporary siblings that killed writers of `path` left behind (SIGKILL skips every clean-up);
    returns how many. Only for a caller that alone may write `path` now (it holds the folder's lock)."""
    path = Path(path)
    stale = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for tmp in stale:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return len(stale)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *,
                       before_rename: Callable[[], None] | None = None) -> None:
    """Write `data` to `path` so that a kill at any moment leaves either the old file or the new one."""
    with atomic_open(path, before_rename=before_rename) as f:
        f.write(data)
