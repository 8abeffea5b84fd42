"""One writer per folder: an OS advisory lock (`flock`) on FOLDER/.lock, held for the life of the process.

Used for run folders (`train.runs`: a second writer is refused) and cache entries (`data.cache`: a second builder
waits, then reads what the first built).

`hold(run_dir)` takes the lock before a command writes or deletes anything in the folder (a new run, `--force`, a
resume, a polish); a second process that asks for the same folder is refused at once, in one line, and touches
nothing. The kernel drops the lock when the holding process ends, however it ends (a SIGKILL included), so a lock
never outlives its writer and nothing needs cleaning up; the empty `.lock` file left behind means nothing by itself.
Within one process `hold` is re-entrant (a run resumed by the process that trained it); `release` gives it back.
Advisory: only tinysr's own writers ask for it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tinysr.errors import TinySRError

LOCK = ".lock"
_held: dict[Path, int] = {}  # resolved run folder -> the open descriptor that holds its lock


def hold(run_dir: str | os.PathLike, *, wait: bool = False) -> None:
    """Take FOLDER/.lock for this process (creating the folder). If another process holds it: TinySRError, or with
    `wait`, block until that process lets go (or dies)."""
    key = Path(run_dir).resolve()
    if key in _held:
        return
    try:
        key.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise TinySRError(f"{run_dir}: cannot lock the run folder ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TinySRError(f"{run_dir}: another tinysr process is writing this run folder; wait for it to end "
                          "(or stop it) before starting, resuming or replacing the run") from None
    _held[key] = fd


def release(run_dir: str | os.PathLike) -> None:
    """Give the lock back (nothing happens if this process does not hold it)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def held(run_dir: str | os.PathLike) -> bool:
    """Whether this process holds the folder's lock."""
    return Path(run_dir).resolve() in _held
