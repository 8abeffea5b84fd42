"""The benchmark test sets (Set5, Set14, BSD100, Urban100, Manga109, T91, BSD200, MATLAB imresize vectors): where
each comes from, and `prepare_testsets` to download, convert, verify and lay them out as tests and benchmarks read
them (`DIR/Set5/*.png`, `DIR/Urban100/*.webp`, ...; `../shared/data/MANIFEST.md` tells the sets' history).

Every file is a raw file of a public GitHub repository at a pinned commit (`SETS`), fetched one by one from
raw.githubusercontent.com. `testsets_sha256.txt`, kept in the package, holds for each laid-out file:
  - the SHA-256 of the downloaded source: a download is checked before it is used (`download.download`);
  - the SHA-256 of the laid-out file, as in the shared folder's SHA256SUMS: a copied file is checked by it;
  - for a converted file (JPEG or BMP to PNG, PNG to lossless WebP), the SHA-256 of its decoded pixels
    (`pixel_sha256`): encoders differ in bytes from version to version (the shared PNGs were optimised with
    oxipng), so a file made here is checked, before it gets its name, by the pixels it decodes to.

Guarantees (those of `download.download`, plus):
  - downloads stream to `DIR/.downloads/<set>/<name>.part` and resume with an HTTP Range request after a cut;
  - a laid-out file appears under its name only once checked, by an atomic rename, so a file with a final name is
    complete; a file already there is checked and skipped, one that fails its check is refused (named, never
    replaced: it may be someone's);
  - a corrupt download is refused with one line naming it, and deleted so the next run starts it again;
  - one process downloads into a folder at a time (`tinysr.lock` on `DIR/.downloads`); a folder already complete
    is only read, so the shared folder may be read-only.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.parse
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from tinysr import lock
from tinysr.atomic import atomic_write_bytes
from tinysr.data.download import DownloadError, download, sha256_file
from tinysr.errors import TinySRError

RAW_BASE_URL = "https://raw.githubusercontent.com"
MANIFEST_NAME = "testsets_sha256.txt"
DOWNLOADS = ".downloads"  # under --out: the sources in flight (and their .part files) until each is laid out

# The pinned snapshots (owner/name, commit); MANIFEST.md of the shared folder names the same ones.
DENOISING = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")  # 2022-05-03
BSDS500 = ("BIDS/BSDS500", "a04b7c6c3a9f0ace74bf205c72a43d32e1c72722")  # 2016-03-31, a mirror of Berkeley's BSDS500
DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")  # 2023-04-06
MATLAB_IMRESIZE = ("fatheral/matlab_imresize", "d7cc04f26f87e6001d0c3068378073015ab3b19d")  # 2021-08-31, MIT


@dataclass(frozen=True)
class Source:
    """Where one set's files are: `folder/<stem><suffix>` in `repo` at `commit`, and what becomes of them.

    convert: "copy" (the file is laid out byte for byte), "png" (decoded, written as PNG) or "webp" (decoded,
    written as lossless WebP, method 4). notice: a licence line, given as a warning whenever the set is fetched.
    """

    repo: str
    commit: str
    folder: str
    suffix: str
    convert: str = "copy"
    notice: str | None = None


SETS: dict[str, Source] = {
    "Set5": Source(*DENOISING, "CSet5", ".png"),
    "Set14": Source(*DENOISING, "CSet14", ".png"),
    "BSD100": Source(*BSDS500, "BSDS500/data/images/val", ".jpg", "png"),  # BSDS300's test set
    "Urban100": Source(*DENOISING, "CUrban100", ".png", "webp"),
    "Manga109": Source(*DENOISING, "CManga109", ".png", notice=(
        "Manga109: academic use only (Manga109 licence, http://www.manga109.org); the images stay copyright of "
        "their authors, so do not redistribute them or use them commercially")),
    "T91": Source(*DCSCN, "data/yang91", ".bmp", "png"),
    "BSD200": Source(*BSDS500, "BSDS500/data/images/train", ".jpg", "png"),  # BSDS300's train set
    "matlab_imresize": Source(*MATLAB_IMRESIZE, "test", ".png"),  # MATLAB R2015b imresize outputs, for test_resize
}
#: What the tests and benchmarks read; Manga109 (141 MiB, academic use only) is fetched only when asked for.
DEFAULT_SETS = ("Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200", "matlab_imresize")
#: The laid-out suffix of each conversion.
SUFFIXES = {"png": ".png", "webp": ".webp"}


@dataclass(frozen=True)
class Entry:
    """One laid-out file: `name` ("Set5/baby.png"), the SHA-256 of the published file, of its pixels (None for a
    file copied byte for byte) and of the source downloaded."""

    name: str
    sha256: str
    pixels: str | None
    source_sha256: str

    @property
    def set_name(self) -> str:
        return self.name.split("/", 1)[0]


# ---------------------------------------------------------------------------------------------------- manifest


def parse_manifest(text: str) -> list[Entry]:
    """Entries of a manifest: lines `<sha256> <pixels sha256 or -> <source sha256> <set>/<file>`, # comments."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or fields[3].count("/") != 1:
            raise TinySRError(f"{MANIFEST_NAME} line {number}: expected 4 fields ending in <set>/<file>")
        sha, pixels, source, name = fields
        entries.append(Entry(name, sha, None if pixels == "-" else pixels, source))
    return entries


def format_manifest(entries: list[Entry], header: str) -> str:
    """The manifest's text: `header` as # comments, then one line per entry (the inverse of `parse_manifest`)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{e.sha256} {e.pixels or '-'} {e.source_sha256} {e.name}" for e in entries]
    return "\n".join(lines) + "\n"


def load_manifest() -> list[Entry]:
    """The manifest kept in the package (`testsets_sha256.txt`)."""
    return parse_manifest(resources.files("tinysr.data").joinpath(MANIFEST_NAME).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------- conversion


def pixel_sha256(data: bytes) -> str:
    """SHA-256 of the pixels an image file decodes to (Pillow): of "<mode> <width>x<height>\\n" and the raw bytes.

    Two files with the same digest hold the same pixels, in the same mode (RGB, L), whatever their encoder did."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        header = f"{im.mode} {im.width}x{im.height}\n".encode()
        return hashlib.sha256(header + im.tobytes()).hexdigest()


def convert_image(data: bytes, convert: str) -> bytes:
    """The file `convert` ("png" or "webp") makes of the image file `data`: its pixels re-encoded losslessly, mode
    kept (the shared folder's PNGs and WebPs were made the same way, then the PNGs optimised)."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        out = io.BytesIO()
        if convert == "png":
            im.save(out, format="PNG", optimize=True)
        elif convert == "webp":
            im.save(out, format="WEBP", lossless=True, method=4)
        else:
            raise ValueError(f"unknown conversion {convert!r}")
        return out.getvalue()


def source_path(entry: Entry, source: Source) -> str:
    """The path of the entry's source file inside its repository."""
    return f"{source.folder}/{Path(entry.name).stem}{source.suffix}"


def source_url(entry: Entry, source: Source, base_url: str) -> str:
    """`<base_url>/<owner>/<name>/<commit>/<path>`: raw.githubusercontent.com's address of a file at a commit."""
    path = urllib.parse.quote(f"{source.repo}/{source.commit}/{source_path(entry, source)}")
    return f"{base_url.rstrip('/')}/{path}"


# ---------------------------------------------------------------------------------------------------- checking


def check_laid_out(path: Path, entry: Entry) -> None:
    """Raise TinySRError naming `path` unless it is the published file, or (converted sets) holds its pixels."""
    actual = sha256_file(path)
    if actual == entry.sha256:
        return
    if entry.pixels is not None:
        try:
            if pixel_sha256(path.read_bytes()) == entry.pixels:
                return
        except (OSError, Image.DecompressionBombError, SyntaxError, ValueError):  # Pillow's errors for a bad file
            pass
        raise TinySRError(f"{path}: not the published image (SHA-256 {actual}, and other pixels); delete it and "
                          "run again")
    raise TinySRError(f"{path}: SHA-256 mismatch (got {actual}, expected {entry.sha256}); delete it and run again")


def _fetch_source(entry: Entry, source: Source, out: Path, *, base_url: str, timeout: float) -> Path:
    """The entry's source file under `out/.downloads/<set>/`, checked: kept from a run cut before it was laid out, or
    downloaded now (a `.part` resumed)."""
    fetched = out / DOWNLOADS / entry.set_name / source_path(entry, source).rsplit("/", 1)[-1]
    if fetched.is_file() and sha256_file(fetched) != entry.source_sha256:
        fetched.unlink()  # only a checked download gets this name; anything else is fetched again
    if not fetched.is_file():
        fetched.parent.mkdir(exist_ok=True)
        try:
            download(source_url(entry, source, base_url), fetched, sha256=entry.source_sha256, timeout=timeout,
                     progress=False)
        except DownloadError as err:
            raise DownloadError(f"{err}; run the same command again to resume") from err
    return fetched


def _lay_out(entry: Entry, source: Source, out: Path, *, base_url: str, timeout: float) -> None:
    """Fetch the entry's source, then move it into place, or convert it, check its pixels and write it atomically."""
    final = out / entry.name
    fetched = _fetch_source(entry, source, out, base_url=base_url, timeout=timeout)
    data = None
    if source.convert != "copy":
        data = convert_image(fetched.read_bytes(), source.convert)
        pixels = pixel_sha256(data)
        if pixels != entry.pixels:
            raise TinySRError(f"{final}: converted from {source_url(entry, source, base_url)}, its pixels differ from "
                              f"the published ones (SHA-256 {pixels}, expected {entry.pixels}); this Pillow decodes "
                              f"{source.suffix} otherwise")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            os.replace(fetched, final)
        else:
            atomic_write_bytes(final, data)
            fetched.unlink()
    except OSError as exc:
        raise TinySRError(f"{final}: cannot write it ({exc.strerror or exc}); free space, then run again") from None


def _start_downloads(out: Path) -> None:
    """Create `out/.downloads` and take its lock: one process downloads into a folder at a time."""
    folder = out / DOWNLOADS
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinySRError(f"{out}: cannot write the test sets there ({exc.strerror or exc})") from None
    try:
        lock.hold(folder)
    except TinySRError:
        raise TinySRError(f"{out}: another tinysr process is downloading test sets into this folder; wait for it to "
                          "end, then run again") from None


def _end_downloads(out: Path) -> None:
    """Give the lock back and remove `out/.downloads` as far as it is empty (a kept `.part` resumes next time). The
    lock file goes too: a process that opened it just before could lock a removed file, a race of three processes
    in one folder that only costs a corrupt `.part`, which its SHA-256 check then refuses."""
    folder = out / DOWNLOADS
    if not lock.held(folder):
        return
    lock.release(folder)
    (folder / lock.LOCK).unlink(missing_ok=True)
    for sub in [*sorted(folder.glob("*")), folder]:
        try:
            sub.rmdir()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------------- prepare


def _entries_of(sets: tuple[str, ...], manifest: list[Entry]) -> list[Entry]:
    unknown = [name for name in sets if name not in SETS]
    if unknown:
        raise TinySRError(f"--sets: unknown set {unknown[0]!r}; known: {', '.join(SETS)}")
    chosen = [e for e in manifest if e.set_name in sets]
    empty = [name for name in sets if not any(e.set_name == name for e in chosen)]
    if empty:
        raise TinySRError(f"{MANIFEST_NAME}: no files listed for {empty[0]}")
    return chosen


def prepare_testsets(out: str | os.PathLike, *, sets: tuple[str, ...] = DEFAULT_SETS, if_missing: bool = False,
                     base_url: str = RAW_BASE_URL, manifest: list[Entry] | None = None, timeout: float = 60.0,
                     progress: bool = True) -> dict[str, int]:
    """Download, convert, verify and lay out `sets` under `out`; returns set -> the number of files laid out now.

    Files already under `out` are checked (bytes, or pixels for a converted set) and skipped; one that fails is
    refused. if_missing: when every file of `sets` already has its name under `out`, return at once without
    reading them (a name is given only to a checked file); otherwise go on as without it. manifest: default the
    package's (`load_manifest`). A set with a licence notice (Manga109) warns when it is fetched. progress: a bar
    per set on a terminal (none in a log).
    """
    out = Path(out)
    entries = _entries_of(tuple(sets), load_manifest() if manifest is None else manifest)
    if if_missing and all((out / e.name).is_file() for e in entries):
        return {name: 0 for name in sets}
    laid_out = {name: 0 for name in sets}
    try:
        for name in sets:
            todo = [e for e in entries if e.set_name == name]
            notice = SETS[name].notice
            if notice and not all((out / e.name).is_file() for e in todo):
                warnings.warn(notice, UserWarning, stacklevel=2)
            for entry in tqdm(todo, desc=name, unit="file", disable=None if progress else True, leave=False):
                final = out / entry.name
                if final.is_file():
                    check_laid_out(final, entry)
                    continue
                if not lock.held(out / DOWNLOADS):
                    _start_downloads(out)  # only now: a folder that is complete (maybe read-only) is only read
                _lay_out(entry, SETS[name], out, base_url=base_url, timeout=timeout)
                laid_out[name] += 1
    finally:
        _end_downloads(out)
    return laid_out
