"""A batch of files to upscale: what the inputs are (images, videos, folders of them) and where each output goes,
with the collision checks, so that a front end (the CLI) only parses, calls and prints.

- OUT is a folder, or, for exactly one input file, a file name with an image or video suffix. A file INPUT goes to
  OUT/<name>; a folder INPUT's images and videos (recursive, hidden files skipped; other files reported) go to
  OUT/<path relative to that folder>.
- An output is never an input; two inputs never share an output; an existing output is replaced only with force
  (checked here before the work, and again when the finished file claims its name: `tinysr.atomic.claim`).
- A video whose suffix is no container FFmpeg writes gets ``.mkv`` in a folder OUT
  (`tinysr.video.upscale.output_name`).
- Before writing, the temporary files that killed runs left in the output folders are removed (`remove_leftovers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinysr.atomic import remove_dead_temps
from tinysr.data.folder import is_image_file, scan_folder, skipped_files_message
from tinysr.errors import TinySRError
from tinysr.video.probe import is_video
from tinysr.video.upscale import MUXERS, output_name

#: Suffixes a user's videos usually carry: in a folder read without the [video] extra, these make the note name it.
VIDEO_SUFFIXES = frozenset({*MUXERS, ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv", ".flv", ".3gp"})


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    video: bool


def _folder_jobs(root: Path) -> tuple[list[tuple[Path, Path, bool]], list[str]]:
    """(files of a folder INPUT as (src, path relative to it, video?), warnings for what is neither)."""
    images, others = scan_folder(root, recursive=True)
    visible = [p for p in images + others if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    videos, no_video_extra = [], None
    for p in visible:
        if not is_image_file(p):
            try:
                if is_video(p):
                    videos.append(p)
            except TinySRError as exc:  # PyAV missing: the folder's images still run, its videos are named
                no_video_extra = exc
    media = set(videos) | {p for p in visible if is_image_file(p)}
    neither = [p for p in visible if p not in media]
    notes = [skipped_files_message(neither, root)] if neither else []
    if no_video_extra is not None and any(p.suffix.lower() in VIDEO_SUFFIXES for p in neither):
        notes.append(f"{root}: its videos are skipped: {no_video_extra}")
    return [(p, p.relative_to(root), p in set(videos)) for p in sorted(media)], notes


def gather(inputs: list[str]) -> tuple[list[tuple[Path, Path, bool]], list[str], list[str]]:
    """([(src, relative output path, video?)], [one-line failures], [warnings]) of the INPUT arguments."""
    found, failures, notes = [], [], []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            files, skipped = _folder_jobs(path)
            notes += skipped
            if not files:
                failures.append(f"{path}: no images or videos in this folder")
            found += files
        elif path.is_file():
            if is_image_file(path):
                found.append((path, Path(path.name), False))
            else:
                try:
                    video = is_video(path)
                except TinySRError as exc:  # PyAV missing (the [video] extra): say so, not "neither"
                    failures.append(f"{path}: {exc}")
                    continue
                if video:
                    found.append((path, Path(path.name), True))
                else:
                    failures.append(f"{path}: neither an image nor a video tinysr reads")
        else:
            failures.append(f"{path}: no such file or folder")
    return found, failures, notes


def is_file_output(output: str) -> bool:
    """Whether -o names a file: an image or video suffix, and not an existing folder."""
    path = Path(output)
    return not path.is_dir() and (is_image_file(path) or path.suffix.lower() in MUXERS)


def plan(found: list[tuple[Path, Path, bool]], output: str, *, n_inputs: int) -> list[Job]:
    """The jobs: one file OUT for exactly one input file, else OUT/<relative path>."""
    if is_file_output(output):
        if n_inputs != 1 or len(found) != 1:
            raise TinySRError(f"-o {output} names a file, which takes exactly one input file; give a folder for "
                              f"{len(found)} inputs")
        src, _, video = found[0]
        return [Job(src, Path(output), video)]
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise TinySRError(f"{out}: exists and is not a folder (-o names a folder, or a file for one input)")
    return [Job(src, out / (rel.with_name(output_name(rel)) if video else rel), video) for src, rel, video in found]


def remove_leftovers(jobs: list[Job]) -> int:
    """Remove the temporary files that killed writers left in the jobs' output folders (a SIGKILL skips every
    clean-up), never a live writer's (`tinysr.atomic.remove_dead_temps`); returns how many."""
    return sum(remove_dead_temps(folder) for folder in sorted({job.dst.parent for job in jobs}))


def check_output(job: Job, *, inputs: set[Path], planned: set[Path], force: bool) -> None:
    """Refuse to overwrite an input, a file written earlier in this run, or (without --force) an existing file."""
    resolved = job.dst.resolve()
    if resolved in inputs:
        raise TinySRError(f"{job.dst}: is an input {'video' if job.video else 'image'}; refusing to overwrite it "
                          "(choose another -o)")
    if resolved in planned:
        raise TinySRError(f"{job.src}: its output {job.dst} is also the output of an earlier input; rename one")
    if job.dst.exists() and not force:
        raise TinySRError(f"{job.dst}: exists; pass --force to overwrite")
