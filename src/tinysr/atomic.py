"""Atomic file writes: a file appears complete or not at all, with the mode an ordinary `open()` would give it.

Every writer in tinysr that replaces a file (weights, run files, images, videos, cache entries, exports) goes through
`atomic_open`, `atomic_write_bytes` or, for a file another program fills (FFmpeg), `temp_file` and `claim`:
  1. create a temporary sibling ``.<name>.<random>.tmp`` exclusively (``O_EXCL``: never a file that exists) in the
     same folder (so the rename stays on one file system), and lock it (`flock`) for as long as the writer lives;
  2. write it, flush and fsync it;
  3. give it its final name (`claim`): `os.replace` onto the target, or, where the target must not be replaced, a
     hard link that fails when the name exists (of two writers racing for one name, the second is refused); then
     fsync the folder so the rename itself survives a power cut.
Any exception (a full disk, Ctrl-C) removes the temporary file and leaves the old target untouched. A SIGKILL skips
every clean-up: the next writer removes what a dead writer left (`remove_stale_temps`, `remove_dead_temps`), and
only that: the kernel drops a writer's lock when it dies, so a temporary file whose lock is free is a dead one.

Modes follow the umask: 0644 under umask 022, 0600 under umask 077, like a file made by `open(path, "w")`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from tinysr import faults

# Why not tempfile.mkstemp: it creates 0600 files whatever the umask, so shared run folders, bundled weights and
# written images would be private. Passing 0o666 / 0o777 to os.open / os.mkdir lets the kernel apply the umask
# at creation, exactly as open() does, without reading the umask (os.umask can only be read by setting it, which
# races with other threads).
_FILE_MODE, _DIR_MODE = 0o666, 0o777
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TRIES = 100
#: A temporary file's name: ``.<name>.<8 hex digits>.tmp`` (`_temp_name`).
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")
#: errno of a file system without hard links: `claim` falls back to a check, then a rename.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})
#: Seconds during which an empty, unlocked temporary file may be a writer's that has not yet locked it.
_NEWBORN_S = 60.0


def _temp_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _create_temp_file(path: Path) -> tuple[int, Path]:
    """A new, empty temporary sibling of `path`, created exclusively and opened for reading and writing: (file
    descriptor, its path)."""
    for _ in range(_TRIES):
        tmp = _temp_name(path, ".tmp")
        try:
            return os.open(tmp, _FLAGS, _FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name after {_TRIES} tries")


@contextlib.contextmanager
def temp_file(path: str | os.PathLike) -> Iterator[tuple[int, Path]]:
    """A new temporary sibling of `path` (step 1 above), locked until the block ends: yields (its descriptor, open
    for reading and writing, and its path). The block writes it and `claim`s it; on an exception it is removed."""
    fd, tmp = _create_temp_file(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # at once: between creation and here it is empty and new (`_is_dead`)
        yield fd, tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def claim(tmp: str | os.PathLike, path: str | os.PathLike, *, replace: bool) -> None:
    """Give the finished temporary file `tmp` the name `path` (step 3 above). With `replace`, whatever file holds
    the name is replaced; without, FileExistsError if the name exists, however recently it appeared."""
    tmp, path = Path(tmp), Path(path)
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails when `path` exists, a dangling link included: the claim and the check are one
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(path):  # no hard links here: check, then rename (a narrower race than no check)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.rename(tmp, path)
        return
    tmp.unlink()


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
def atomic_open(path: str | os.PathLike, *, replace: bool = True,
                before_rename: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file to write; when the block ends without error it becomes `path`, else it is removed.

    replace: False claims `path` only if no file holds the name (FileExistsError otherwise, the file that is there
    untouched). `before_rename` runs once the temporary file is complete and fsynced, just before the rename (the
    run folder's SIGKILL test waits there; nothing else uses it).
    """
    path = Path(path)
    with temp_file(path) as (fd, tmp):
        with os.fdopen(os.dup(fd), "wb") as f:  # a duplicate: the lock stays with `fd` until the name is claimed
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        faults.point(f"before-rename:{path.name}")
        claim(tmp, path, replace=replace)
    faults.point(f"after-rename:{path.name}")
    _fsync_dir(path.parent)


def _is_dead(tmp: Path, *, newborn_s: float) -> bool:
    """Whether the temporary file or folder `tmp` is no live writer's: nobody holds its lock (the kernel drops it
    when its writer dies, SIGKILL included) and it is not an empty file newer than `newborn_s` seconds (the instant
    between a writer's exclusive creation and its lock). Never a link, a FIFO or a device."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: a live writer holds it
        return False
    finally:
        os.close(fd)
    return not (stat.S_ISREG(info.st_mode) and info.st_size == 0 and time.time() - info.st_mtime < newborn_s)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Remove the temporary siblings that dead writers of `path` left behind (SIGKILL skips every clean-up);
    returns how many. For a caller that alone may write `path` now (it holds the folder's lock); a live writer's
    file, locked, is kept all the same."""
    path = Path(path)
    stale = [tmp for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp") if _is_dead(tmp, newborn_s=0.0)]
    for tmp in stale:
        _remove(tmp)
    return len(stale)


def remove_dead_temps(folder: str | os.PathLike) -> int:
    """Remove the temporary files in `folder` (``.<name>.<8 hex digits>.tmp``) that dead writers left behind, of
    any name, while other writers may be at work there (theirs are locked, or empty and new); returns how many.
    Folders are left to their writers (an export's stage: `tinysr.export.destination`)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder yet, or not readable: nothing of ours to remove
        return 0
    removed = 0
    for entry in entries:
        if TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                and _is_dead(Path(entry.path), newborn_s=_NEWBORN_S):
            with contextlib.suppress(OSError):  # a read-only folder: left as it is, the run goes on
                os.unlink(entry.path)
                removed += 1
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *,
                       before_rename: Callable[[], None] | None = None) -> None:
    """Write `data` to `path` so that a kill at any moment leaves either the old file or the new one."""
    with atomic_open(path, before_rename=before_rename) as f:
        f.write(data)
