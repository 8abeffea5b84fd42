"""Where an export writes: the files of each format, the checks made before anything is written, and how each
finished file takes its final name. The rule: an export never deletes or replaces what tinysr did not write.

1. `export_files`: the files a format writes for OUT, each with the format's suffix (ncnn: NAME.param and its
   NAME.bin; Core ML: the NAME.mlpackage folder);
2. `check_destination`, before anything is written: each file's folder exists; no file is, or holds, a source (the
   model file, the calibration images: `tinysr.paths`); an existing file needs `force`, and even then is replaced
   only when it is what the format writes: a regular file (not a folder, a link or a device), or a Core ML package
   that tinysr wrote (it holds `MARKER`);
3. `staging`: the export is written into a new folder beside OUT under a unique name (`.OUT.<hex>.tmp`, created
   exclusively and locked while the export lives), so that nothing half-written ever has a final name;
4. `publish`: each finished file takes its final name. Without `force` the name is claimed without replacing (a hard
   link, which fails when the name exists), so of two exports racing for one name the loser gets a one-line error;
   with `force` it replaces the checked file (a package: the old one is moved into the stage, then removed).
The stage of a killed export (SIGKILL skips every clean-up) is removed by the next export to that name: a stage whose
lock nobody holds is dead.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tinysr.atomic import atomic_write_bytes, make_temp_dir
from tinysr.errors import TinySRError
from tinysr.paths import refuse_overlap

#: format -> the suffix of OUT (ncnn: the .param file; its weights go to the same name with .bin).
SUFFIXES = {"onnx": ".onnx", "onnx-int8": ".onnx", "numpy": ".npz", "tflite": ".tflite", "ncnn": ".param",
            "coreml": ".mlpackage", "spandrel": ".safetensors"}
#: format -> the other suffixes its OUT may have (spandrel also reads a torch .pth state dict).
OTHER_SUFFIXES = {"spandrel": (".pth",)}
FOLDER_FORMATS = frozenset({"coreml"})
#: The file inside a Core ML package that says tinysr wrote it: `--force` replaces a package only when it is there.
MARKER = "tinysr-export.json"
#: errno of a file system that has no hard links: the claim falls back to a check, then a rename.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})


# ---------------------------------------------------------------------------------------------- step 1: the files


def export_files(out: str | os.PathLike, fmt: str) -> list[Path]:
    """The paths an export in format `fmt` to OUT writes; OUT without the format's suffix is refused."""
    out, suffixes = Path(out), (SUFFIXES[fmt], *OTHER_SUFFIXES.get(fmt, ()))
    if out.suffix not in suffixes:
        kind = "folder" if fmt in FOLDER_FORMATS else "file"
        what = "NAME.param and NAME.bin" if fmt == "ncnn" else f"a {' or a '.join(suffixes)} {kind}"
        raise TinySRError(f"{out}: --format {fmt} writes {what}; give OUT the suffix {' or '.join(suffixes)}")
    return [out, out.with_suffix(".bin")] if fmt == "ncnn" else [out]


# ---------------------------------------------------------------------------------------------- step 2: the checks


def check_destination(files: list[Path], *, fmt: str, force: bool,
                      sources: Mapping[str, str | os.PathLike | None] | None = None) -> None:
    """One-line TinySRError, before anything is written, for a file that cannot be written (see step 2 above).

    sources: option -> path read by the export (`--model`: the weights file, `--calibration`: a folder). A file
    may lie inside a source folder (an export beside the calibration images), never be or contain a source."""
    for path in files:
        if not path.parent.is_dir():
            raise TinySRError(f"{path.parent}: no such folder for {path.name}")
        for option, source in (sources or {}).items():
            if source is not None and not _inside(path, source):
                refuse_overlap(source=source, destination=path, source_option=option, destination_option="OUT")
        if os.path.lexists(path):
            if not force:
                raise TinySRError(f"{path}: exists; pass --force to overwrite")
            check_replaceable(path, fmt=fmt)


def _inside(path: Path, folder: str | os.PathLike) -> bool:
    """Whether `path` lies strictly inside the folder `folder` (resolved), where writing it replaces nothing there."""
    resolved, folder = path.resolve(), Path(folder).resolve()
    return folder.is_dir() and resolved != folder and resolved.is_relative_to(folder)


def check_replaceable(path: Path, *, fmt: str) -> None:
    """TinySRError unless the existing `path` is what format `fmt` writes: a regular file, or a marked package."""
    if path.is_symlink():
        raise TinySRError(f"{path}: a symbolic link; refusing to replace it (remove it, or choose another OUT)")
    if fmt in FOLDER_FORMATS:
        if not (path.is_dir() and (path / MARKER).is_file()):
            raise TinySRError(f"{path}: not a package tinysr exported (no {MARKER} inside); refusing to replace "
                              "it (remove it, or choose another OUT)")
    elif not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise TinySRError(f"{path}: {kind}; refusing to replace it with a {SUFFIXES[fmt]} file")


def mark(package: Path) -> None:
    """Write `MARKER` into a package folder tinysr has just written."""
    atomic_write_bytes(package / MARKER, json.dumps({"written_by": "tinysr export"}).encode())


# ---------------------------------------------------------------------------------------------- step 3: the stage


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A new, empty, locked folder beside `out` for the export to write into; removed when the block ends."""
    remove_dead_stages(out)
    try:
        stage = make_temp_dir(out)
        fd = os.open(stage, os.O_RDONLY)
    except OSError as exc:
        raise TinySRError(f"cannot write into {out.parent} ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        os.close(fd)


def remove_dead_stages(out: Path) -> int:
    """Remove the stages beside `out` that no live export holds (left by a kill); returns how many."""
    removed = 0
    for stage in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        if stage.is_symlink() or not stage.is_dir():
            continue  # an atomic writer's temporary file, not a stage
        try:
            fd = os.open(stage, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live export
        finally:
            os.close(fd)
        shutil.rmtree(stage, ignore_errors=True)
        removed += 1
    return removed


# ---------------------------------------------------------------------------------------------- step 4: publish


def publish(staged: Path, final: Path, *, replace: bool, fmt: str) -> None:
    """Give the finished `staged` (inside the stage) its final name (see step 4 above)."""
    if staged.is_dir():
        _publish_folder(staged, final, replace=replace, fmt=fmt)
    elif replace:
        os.replace(staged, final)  # checked by check_destination; a folder put there since fails here
    else:
        _claim(staged, final)


def _exists_now(final: Path) -> TinySRError:
    return TinySRError(f"{final}: exists (written by another process meanwhile); pass --force to overwrite")


def _claim(staged: Path, final: Path) -> None:
    """Link `staged` to `final` without replacing anything, then drop the staged name."""
    try:
        os.link(staged, final)
    except FileExistsError:
        raise _exists_now(final) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if os.path.lexists(final):  # no hard links here: check, then rename (a narrower race than no check)
            raise _exists_now(final) from None
        os.rename(staged, final)
        return
    staged.unlink()


def _publish_folder(staged: Path, final: Path, *, replace: bool, fmt: str) -> None:
    if not os.path.lexists(final):
        os.rename(staged, final)  # only an empty folder made since could be replaced here: nothing is lost
        return
    if not replace:
        raise _exists_now(final)
    check_replaceable(final, fmt=fmt)  # again, just before: it may have changed while the export ran
    aside = staged.parent / ".replaced"
    os.rename(final, aside)  # into the stage, which is removed with it
    try:
        os.rename(staged, final)
    except OSError:
        os.rename(aside, final)
        raise


def total_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a Core ML package), links not followed."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(os.lstat(os.path.join(root, name)).st_size for root, _, names in os.walk(path) for name in names)
