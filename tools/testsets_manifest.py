"""Maintainer tool: write `src/tinysr/data/testsets_sha256.txt`, the manifest `tinysr prepare testsets` checks.

It reads the shared folder's `SHA256SUMS` (the published laid-out files) and the pinned source repositories
(`tinysr.data.testsets.SETS`), each given as a git directory (a clone or a bare mirror holding the pinned commit), and
for every file of every set it:
1. reads the source file at the pinned commit (`git cat-file`) and takes its SHA-256;
2. a copied set: checks that the source is byte for byte the published file (its SHA-256 in SHA256SUMS);
   a converted set: converts it as `prepare_testsets` does (`convert_image`) and checks that the result decodes to
   the pixels of the published file, which is read from `--data` and checked against SHA256SUMS first;
3. writes the line: SHA-256 of the published file, of its pixels (converted sets), of the source.
Manga109 is not in the shared folder: its files are copies, listed by their sources' SHA-256.
Every file of SHA256SUMS must be produced by exactly one source. Exit 1, naming the file, at the first mismatch.

    python tools/testsets_manifest.py --data ../shared/data \\
        --git majedelhelou/denoising_datasets=PATH --git BIDS/BSDS500=PATH \\
        --git jiny2001/dcscn-super-resolution=PATH --git fatheral/matlab_imresize=PATH
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

from tinysr.data.download import sha256_file
from tinysr.data.testsets import (MANIFEST_NAME, SETS, SUFFIXES, Entry, Source, convert_image, format_manifest,
                                  pixel_sha256)

REPO = Path(__file__).resolve().parents[1]
HEADER = f"""\
{MANIFEST_NAME}: what `tinysr prepare testsets` checks (tinysr.data.testsets), one line per laid-out file.
Written by tools/testsets_manifest.py from the shared folder's SHA256SUMS and the pinned sources; do not edit.
Columns: SHA-256 of the published file (as in SHA256SUMS; Manga109: of its source), SHA-256 of its decoded pixels
(tinysr.data.testsets.pixel_sha256; "-" for a file copied byte for byte), SHA-256 of the source file at its pinned
commit, and the laid-out name <set>/<file>."""


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True).stdout


def source_files(git_dir: Path, source: Source) -> list[str]:
    """The names (with suffix) of the set's source files at the pinned commit, sorted."""
    listing = _git(git_dir, "ls-tree", "--name-only", f"{source.commit}:{source.folder}").decode().splitlines()
    return sorted(name for name in listing if name.endswith(source.suffix))


def read_sums(data: Path) -> dict[str, str]:
    sums = {}
    for line in (data / "SHA256SUMS").read_text().splitlines():
        sha, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = sha
    return sums


def entry_for(set_name: str, source: Source, file: str, *, git_dir: Path, data: Path,
              sums: dict[str, str]) -> Entry:
    """Steps 1-3 for one source file; raises SystemExit naming the file when it does not give the published one."""
    blob = _git(git_dir, "cat-file", "blob", f"{source.commit}:{source.folder}/{file}")
    source_sha = hashlib.sha256(blob).hexdigest()
    name = f"{set_name}/{Path(file).stem}{SUFFIXES.get(source.convert, source.suffix)}"
    published = sums.get(name)
    if source.convert == "copy":
        if published is not None and published != source_sha:
            raise SystemExit(f"{name}: the source {source.repo}:{source.folder}/{file} is not the published file")
        return Entry(name, published or source_sha, None, source_sha)
    if published is None or sha256_file(data / name) != published:
        raise SystemExit(f"{data / name}: missing, or not the file SHA256SUMS lists")
    pixels = pixel_sha256((data / name).read_bytes())
    if pixel_sha256(convert_image(blob, source.convert)) != pixels:
        raise SystemExit(f"{name}: converting {source.repo}:{source.folder}/{file} does not give its pixels")
    return Entry(name, published, pixels, source_sha)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=GIT_DIR", required=True)
    parser.add_argument("--out", type=Path, default=REPO / "src" / "tinysr" / "data" / MANIFEST_NAME)
    args = parser.parse_args(argv)
    git_dirs = dict(spec.split("=", 1) for spec in args.git)
    sums = read_sums(args.data)
    entries = []
    for set_name, source in SETS.items():
        git_dir = Path(git_dirs[source.repo])
        files = source_files(git_dir, source)
        entries += [entry_for(set_name, source, f, git_dir=git_dir, data=args.data, sums=sums) for f in files]
        print(f"{set_name}: {len(files)} files from {source.repo}@{source.commit[:12]}:{source.folder}")
    missing = sorted(set(sums) - {e.name for e in entries})
    if missing:
        raise SystemExit(f"{missing[0]}: in SHA256SUMS but made by no source ({len(missing)} such files)")
    args.out.write_text(format_manifest(entries, HEADER))
    print(f"wrote {args.out} ({len(entries)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
