"""`tinysr upscale`: image files, videos and folders of them through a network.

    tinysr upscale --model M INPUT... -o OUT [--scale S] [--tile 512 --overlap N] [--self-ensemble] [--device D]
                   [--engine E] [--max-pixels N] [--codec C --crf N --preset P] [--force]
- OUT is a folder (created once there is something to write), or, for exactly one input file, a file name with an
  image or video suffix. A file INPUT goes to OUT/<name>; a folder INPUT's images and videos (recursive, hidden
  files skipped; other files reported) go to OUT/<path relative to that folder>. The format follows the suffix.
- A video is recognised by its content (`tinysr.video.upscale`): every frame, the timestamps, audio and subtitles kept.
- An output is never an input; an existing output is overwritten only with --force, one that another run writes
  meanwhile too (a finished file claims its name without replacing: of two runs, the second reports that file
  failed). The temporary files that killed runs left in the output folders are removed first.
- Grey files come out grey; alpha is kept (upscaled with MATLAB bicubic); grey with alpha comes out RGBA. Any other
  conversion of the input (16-bit to 8-bit, CMYK) is reported on a warning line.
- A failing file is reported on one line naming it, the others still run; the exit status is 1 if any failed.
- --model auto (`tinysr.delivery.auto`): each file gets the bundled model its content calls for (one line per file says
  which), at the scale `tinysr encode` recorded in it (else --scale, else 2), cropped to the recorded original size.
  A record that does not fit (a scale without a model, a size the image does not have) is ignored with a warning,
  and the file is still upscaled. A video takes the JPEG-aware model
  (compressed video blocks as JPEG does). --model auto-5k does the same with the <= 5,000-parameter nets.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tqdm import tqdm

from tinysr.cli.parser import ENGINES
from tinysr.data.io import read_for_upscale, write_image
from tinysr.errors import TinySRError, one_line
from tinysr.delivery.auto import (
    AUTO_FAMILIES,
    SourceInfo,
    describe_choice,
    inspect_source,
    upscale_auto,
)
from tinysr.infer.load import load_network
from tinysr.infer.upscale import choose_engine, upscale
from tinysr.infer.weights import torch_available
from tinysr.plan import Job, check_output, gather, plan, remove_leftovers
from tinysr.video.upscale import resolve_model, upscale_video

#: Output pixels above which the next image is not computed while this one is written (an 8000x8000 image's x2
#: output is 768 MB; two of them in memory at once would double the peak that tiles and the streamed PNG writer
#: keep down).
OVERLAP_MAX_OUTPUT_PIXELS = 64_000_000


@dataclass(frozen=True)
class Loaded:
    """An image job's input, read (on the worker thread while the previous image is written): the pixels, what
    `--model auto` knows of the file, and the conversions to report."""

    image: np.ndarray
    info: SourceInfo | None
    changed: list[str]


def read_job(job: Job, model, args: argparse.Namespace) -> Loaded:
    info = inspect_source(job.src, max_pixels=args.max_pixels) if model is None else None
    image, changed = read_for_upscale(job.src, max_pixels=args.max_pixels)
    return Loaded(image, info, changed)


def upscale_loaded(loaded: Loaded, model, args: argparse.Namespace, *,
                   fused: bool | None) -> tuple[np.ndarray, str | None]:
    """(the upscaled image, --model auto's line saying which model it chose) of an image read by `read_job`."""
    options = {"tile": args.tile, "overlap": args.overlap, "self_ensemble": args.self_ensemble,
               "device": args.device, "fused": fused}
    if loaded.info is not None:
        result = upscale_auto(loaded.image, info=loaded.info, scale=args.scale, family=args.model, **options)
        return result.image, describe_choice(loaded.info, result.model)
    return upscale(loaded.image, model, **options), None


def write_job(job: Job, sr: np.ndarray, args: argparse.Namespace) -> None:
    """Write one result atomically (on the main thread, while the next image computes)."""
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    write_image(job.dst, sr, replace=args.force)  # without --force, a file that appeared meanwhile is kept


def upscale_clip(job: Job, model, args: argparse.Namespace, *, fused: bool | None) -> str | None:
    """One video through `upscale_video`; with --model auto, the model `choose_model` gives lossy input of unknown
    quality (the scale's JPEG-aware one where bundled, else the clean one)."""
    if args.self_ensemble:
        raise TinySRError(f"{job.src}: --self-ensemble is for images; a video runs one pass per frame")
    note = None
    if model is None:
        model, name = resolve_model(args.model, job.src, scale=args.scale)
        note = f"{one_line(job.src)}: video, model {name}"
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    upscale_video(job.src, job.dst, model, fused=fused, yuv=False if args.no_yuv else None, tile=args.tile,
                  codec=args.codec, crf=args.crf, preset=args.preset, force=args.force, progress=True,
                  max_pixels=args.max_pixels)
    return note


@contextlib.contextmanager
def failure_named(job: Job) -> Iterator[None]:
    """Every failure of a job's step becomes a TinySRError naming its file."""
    try:
        yield
    except TinySRError as exc:  # e.g. a grey image with --engine fused: name the file, keep going
        text = str(exc)
        raise TinySRError(text if str(job.src) in text else f"{job.src}: {text}") from None
    except (RuntimeError, MemoryError) as exc:  # e.g. out of memory: name the file, keep going
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TinySRError(f"{job.src}: upscaling failed ({first}); try --tile 256") from None
    except OSError as exc:
        raise TinySRError(f"{job.src}: {exc.strerror or exc}") from None


def run_clip(job: Job, model, args: argparse.Namespace, *, fused: bool | None) -> str | None:
    """One video, start to end (images go through `Pipeline`); every failure becomes a TinySRError naming it."""
    with failure_named(job):
        return upscale_clip(job, model, args, fused=fused)


def prepare(args: argparse.Namespace) -> tuple[object, str, bool | None]:
    """(model or None for auto, its description, the fused choice); a model the options rule out fails here."""
    if getattr(args, "device", "cpu") != "cpu" and not torch_available():
        raise TinySRError(f"--device {args.device} needs torch: pip install 'tinysr[train]'")
    if args.model in AUTO_FAMILIES:
        return None, f"--model {args.model}", ENGINES[args.engine]
    try:
        model, description = load_network(args.model, scale=args.scale)
    except TinySRError as exc:  # e.g. a misspelt family: say that the families are models too
        if str(exc).startswith(f"unknown model {args.model!r}"):
            raise TinySRError(f"{exc}, or per file: {', '.join(AUTO_FAMILIES)}") from None
        raise
    fused = ENGINES[args.engine]
    if fused:
        try:
            choose_engine(model, self_ensemble=args.self_ensemble, device=args.device, rgb=True, fused=True)
        except TinySRError as exc:
            raise TinySRError(f"--engine fused: {exc}") from None
    return model, description, fused


def report(done: int, jobs: list[Job], failures: list[str], *, model, description: str, output: str) -> int:
    factor = "" if model is None else f" x{model.config.scale}"
    what = "files" if any(job.video for job in jobs) else "images"
    print(one_line(f"upscaled {done} of {len(jobs)} {what}{factor} with {description} into {output}"))
    for line in failures:
        print(f"tinysr: failed: {one_line(line)}", file=sys.stderr)
    if failures:
        print(f"tinysr: {len(failures)} failure(s)", file=sys.stderr)
    return 1 if failures else 0


def run(args: argparse.Namespace) -> int:
    model, description, fused = prepare(args)
    found, failures, notes = gather(args.inputs)
    for note in notes:
        print(f"tinysr: warning: {one_line(note)}", file=sys.stderr)
    if not found:
        raise TinySRError(failures[0] if len(failures) == 1 else f"nothing to upscale: {'; '.join(failures)}")
    jobs = plan(found, args.output, n_inputs=len(args.inputs))
    remove_leftovers(jobs)  # what killed runs left in the output folders
    done = 0
    inputs, planned = {job.src.resolve() for job in jobs}, set()
    with Pipeline(jobs, model, args, fused=fused) as pipeline:
        for i, job in enumerate(tqdm(jobs, desc="upscale", unit="file", disable=len(jobs) < 2)):
            try:
                check_output(job, inputs=inputs, planned=planned, force=args.force)
                planned.add(job.dst.resolve())
                if job.video:
                    note = run_clip(job, model, args, fused=fused)
                else:
                    with failure_named(job):
                        changed, sr, note = pipeline.result(i)
                        for line in changed:
                            tqdm.write(f"tinysr: warning: {one_line(job.src)}: {line}", file=sys.stderr)
                        write_job(job, sr, args)
                done += 1
                if note:
                    tqdm.write(note)
            except TinySRError as exc:
                failures.append(str(exc))
    return report(done, jobs, failures, model=model, description=description, output=args.output)


class Pipeline:
    """Reading and computing overlap with writing: while image i is written (on the main thread, where an interrupt
    removes the write in progress), image i + 1 is read and upscaled on a worker thread (Pillow's decoders, the
    kernels and zlib release the GIL). Memory: one result computed ahead at most, and none after an image over
    `OVERLAP_MAX_OUTPUT_PIXELS`. An output that exists (without --force) is not computed ahead; videos run alone."""

    def __init__(self, jobs: list[Job], model, args: argparse.Namespace, *, fused: bool | None) -> None:
        self.jobs, self.model, self.args, self.fused = jobs, model, args, fused
        self.ahead: dict[int, Future] = {}

    def __enter__(self) -> Pipeline:
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="tinysr-upscale")
        return self

    def __exit__(self, *exc_info) -> None:
        self.worker.shutdown(cancel_futures=True)

    def _compute(self, i: int) -> tuple[list[str], np.ndarray, str | None]:
        loaded = read_job(self.jobs[i], self.model, self.args)
        sr, note = upscale_loaded(loaded, self.model, self.args, fused=self.fused)
        return loaded.changed, sr, note

    def _start_next(self, i: int) -> None:
        """Start computing the first image job after i whose output is still to be written."""
        for k in range(i + 1, len(self.jobs)):
            job = self.jobs[k]
            if not job.video:
                if self.args.force or not job.dst.exists():
                    self.ahead[k] = self.worker.submit(self._compute, k)
                return

    def result(self, i: int) -> tuple[list[str], np.ndarray, str | None]:
        """(conversions to report, the upscaled image, --model auto's line) of image job i; the next one starts."""
        future = self.ahead.pop(i, None) or self.worker.submit(self._compute, i)
        changed, sr, note = future.result()
        if sr.shape[0] * sr.shape[1] <= OVERLAP_MAX_OUTPUT_PIXELS:  # larger outputs are written alone
            self._start_next(i)
        return changed, sr, note
