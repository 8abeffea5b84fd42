"""`tinysr demo`: the main job on the core install, in seconds: the bundled nets on embedded photos, clean and JPEG.

Steps:
1. each embedded photo (`tinysr.photos`) is an HR image; its LR is MATLAB bicubic x1/2 (`tinysr.data.degrade`'s
   `bicubic`: `tinysr.resize.imresize`'s float path, one rounding), the study's degradation;
2. clean: the LR brought back by bicubic (`imresize`, float path), `tiny-1k-x2` and `tiny-5k-x2` (`tinysr.upscale`);
3. compressed: the LR sent as a JPEG of quality 40, a file in OUT/sent/ written as a sender would write it. It is
   brought back by bicubic, by the clean `tiny-1k-x2`, and by the nets that `--model auto` and `auto-5k` pick for
   that file (`tinysr.delivery.auto`: `inspect_source` reads the quality from the file's tables, `upscale_auto`);
4. PSNR of every result against the HR under the `standard` protocol (`tinysr.metrics`; named in the report);
5. OUT/comparison.png and OUT/compressed.png (a row of crops per photo, `tinysr.showcase.figure`, Pillow), and
   OUT/report.md; the CLI prints the report.

Nothing is trained. The bundled nets never saw these photos. Training is `tinysr demo --train`
(`tinysr.experiments.demo`, the [train] extra).

Torch-free: this module imports no torch, scipy, matplotlib or scikit-image (`tests/test_demo.py` runs it in a
fresh process where they cannot be imported), so it runs on `pip install tinysr`.

Convention: images are HWC RGB uint8; the networks' outputs are uint8, the bicubic baseline's are rounded to uint8.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import tinysr
from tinysr.atomic import atomic_open
from tinysr.data.degrade import degrade, mod_crop
from tinysr.data.io import read_image
from tinysr.delivery.auto import inspect_source, upscale_auto
from tinysr.errors import TinySRError
from tinysr.metrics import PROTOCOLS, measure, quantize
from tinysr.photos import PHOTOS, load_photo
from tinysr.resize import imresize
from tinysr.showcase.figure import crop_row, write_rows

SCALE = 2
QUALITY = 40  # JPEG quality the photos are sent at: the low band of `--model auto` (tinysr.delivery.auto)
PROTOCOL = PROTOCOLS["standard"]
CLEAN_MODELS = ("tiny-1k-x2", "tiny-5k-x2")  # the bundled nets of the clean comparison
JPEG_CLEAN = "tiny-1k-x2"  # the clean net, shown on the JPEG too: it sharpens the blocks
FAMILIES = ("auto", "auto-5k")  # `--model auto` families shown on the JPEG
CLEAN, COMPRESSED = "clean", "compressed"  # the two cases


@dataclass(frozen=True)
class Showcase:
    """What the demo measured and wrote: PSNR[case][upscaler][photo], the model each auto family picked per photo,
    and the report (markdown, as OUT/report.md holds it)."""

    psnr: dict[str, dict[str, dict[str, float]]]
    picks: dict[str, dict[str, str]]  # family -> photo -> model
    report: str
    files: tuple[Path, ...]


def bicubic_up(lr: np.ndarray) -> np.ndarray:
    """The baseline: MATLAB bicubic x`SCALE` (`imresize` float path), rounded to uint8 as a viewer would see it."""
    return quantize(imresize(lr.astype(np.float64), float(SCALE)))


def clean_case(lr: np.ndarray, models: dict[str, object]) -> dict[str, np.ndarray]:
    """Step 2: upscaler -> SR of the clean LR."""
    return {"bicubic": bicubic_up(lr), **{name: tinysr.upscale(lr, model) for name, model in models.items()}}


def send_as_jpeg(lr: np.ndarray, path: Path, *, quality: int) -> Path:
    """Step 3's sender: `lr` as a JPEG of `quality`, written atomically by Pillow with its defaults (4:2:0), as the
    `bicubic+jpegQ` degradation encodes (`tinysr.data.codecs`; a test checks the pixels are the same)."""
    with atomic_open(path) as f:
        Image.fromarray(lr).save(f, format="JPEG", quality=quality)
    return path


def compressed_case(path: Path, clean_net: object) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Step 3's receiver, given only the file: (upscaler -> SR, family -> the model it picked)."""
    received, _ = read_image(path)
    info = inspect_source(path)
    srs = {"bicubic": bicubic_up(received), JPEG_CLEAN: tinysr.upscale(received, clean_net)}
    picks = {}
    for family in FAMILIES:
        result = upscale_auto(received, info=info, family=family)
        srs[family], picks[family] = result.image, result.model
    return srs, picks


def score(srs: dict[str, np.ndarray], hr: np.ndarray) -> dict[str, float]:
    """Step 4: upscaler -> PSNR (dB) against `hr` under `PROTOCOL`."""
    return {name: measure(sr, hr, scale=SCALE, protocol=PROTOCOL)[0] for name, sr in srs.items()}


def run_photo(name: str, *, models: dict[str, object], sent_dir: Path, quality: int
              ) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """Steps 1-3 on one photo: (HR, {case: {upscaler: SR}}, {family: model picked})."""
    hr = mod_crop(load_photo(name), SCALE)
    lr = degrade(hr, SCALE, "bicubic")
    sent = send_as_jpeg(lr, sent_dir / f"{name}-x{SCALE}-q{quality}.jpg", quality=quality)
    compressed, picks = compressed_case(sent, models[JPEG_CLEAN])
    return hr, {CLEAN: clean_case(lr, models), COMPRESSED: compressed}, picks


def upscaler_label(upscaler: str, picks: dict[str, str], *, sep: str = ": ") -> str:
    """`auto` -> "auto: tiny-1k-x2-jpeg-low" (the model picked; several joined by "/"); any other name as is."""
    if upscaler not in picks:
        return upscaler
    return f"{upscaler}{sep}{'/'.join(dict.fromkeys(picks[upscaler].values()))}"


def table(psnr: dict[str, dict[str, float]], picks: dict[str, dict[str, str]]) -> list[str]:
    """Markdown rows: upscaler | PSNR per photo | mean over photos | mean over bicubic."""
    photos = list(psnr["bicubic"])
    lines = [f"| upscaler | {' | '.join(photos)} | mean | over bicubic |", "|---" * (len(photos) + 3) + "|"]
    base = float(np.mean(list(psnr["bicubic"].values())))
    for upscaler, per_photo in psnr.items():
        mean = float(np.mean(list(per_photo.values())))
        cells = " | ".join(f"{per_photo[p]:.2f}" for p in photos)
        lines.append(f"| {upscaler_label(upscaler, picks)} | {cells} | {mean:.2f} | {mean - base:+.2f} |")
    return lines


def report_text(psnr: dict, picks: dict, *, out: Path, quality: int, seconds: float) -> str:
    """report.md: the command, the protocol, both tables, the figures and what to try next."""
    first = next(iter(PHOTOS))
    sent = shlex.quote(str(out / "sent" / f"{first}-x{SCALE}-q{quality}.jpg"))
    command = f"tinysr demo --out {shlex.quote(str(out))}"
    lines = [f"# tinysr demo: x{SCALE} on {len(PHOTOS)} embedded photos, clean and sent as a JPEG", "",
             f"The bundled nets on real photos that ship with tinysr (`tinysr/photos`, none in their training data). "
             f"Nothing is trained; {seconds:.1f} s in all. Command: `{command}`", "",
             f"PSNR in dB, {PROTOCOL.describe(SCALE)}.", "",
             f"## Clean: the LR is MATLAB bicubic x1/{SCALE} of the photo", "", *table(psnr[CLEAN], picks), "",
             "![clean](comparison.png)", "",
             f"## Compressed: the LR sent as a JPEG of quality {quality} (the files in {out / 'sent'})", "",
             f"The receiver has only the file: `--model auto` reads the quality from its quantisation tables and "
             f"takes the net of that band; `{JPEG_CLEAN}`, the clean net, sharpens the blocks.", "",
             *table(psnr[COMPRESSED], picks), "", "![compressed](compressed.png)", "",
             f"Upscale a file yourself: `tinysr upscale {sent} -o {first}-x{SCALE}.png` "
             "(`--model auto` is the default). Training: `tinysr demo --train` (`pip install 'tinysr[train]'`).", ""]
    return "\n".join(lines)


def write_figures(out: Path, results: dict[str, tuple[np.ndarray, dict]], psnr: dict, picks: dict, *,
                  quality: int) -> tuple[Path, Path]:
    """Step 5's figures, a row per photo (results: photo -> (HR, {case: {upscaler: SR}})): OUT/comparison.png
    (clean) and OUT/compressed.png."""
    def row(case: str, name: str, what: str):
        hr, srs = results[name]
        labels = {f"{upscaler_label(u, picks, sep=chr(10))}\n{psnr[case][u][name]:.2f} dB": sr
                  for u, sr in srs[case].items()}
        return crop_row(hr, labels, title=f"{name}, x{SCALE} from {what}, PSNR-Y ({PROTOCOL.name} protocol)")

    return (write_rows(out / "comparison.png", [row(CLEAN, n, "the clean LR") for n in results]),
            write_rows(out / "compressed.png", [row(COMPRESSED, n, f"a JPEG q{quality}") for n in results]))


def prepare_out(out: Path, *, force: bool) -> None:
    """Refuse a non-empty `out` without `force` (before any work), then create OUT/sent/."""
    if out.exists() and not out.is_dir():
        raise TinySRError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TinySRError(f"{out}: exists and is not empty; pass --force to replace the demo's report, figures and "
                          "sent/ files in it, or choose another --out")
    try:
        (out / "sent").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinySRError(f"cannot create {out}: {exc.strerror or exc}") from None


def run_showcase(*, out: str | Path, force: bool = False, quality: int = QUALITY) -> Showcase:
    """Run the demo into `out` (see the module doc) and return what it measured; `force` replaces the demo's files
    in a non-empty `out` (without it, such an `out` is refused before any work)."""
    out, began = Path(out), time.monotonic()
    prepare_out(out, force=force)
    models = {name: tinysr.load_model(name) for name in CLEAN_MODELS}
    psnr: dict = {CLEAN: {}, COMPRESSED: {}}
    picks: dict = {family: {} for family in FAMILIES}
    results = {}
    for name in PHOTOS:
        hr, srs, picked = run_photo(name, models=models, sent_dir=out / "sent", quality=quality)
        results[name] = hr, srs
        for case in (CLEAN, COMPRESSED):
            for upscaler, value in score(srs[case], hr).items():
                psnr[case].setdefault(upscaler, {})[name] = value
        for family, model in picked.items():
            picks[family][name] = model
    figures = write_figures(out, results, psnr, picks, quality=quality)
    report = report_text(psnr, picks, out=out, quality=quality, seconds=time.monotonic() - began)
    with atomic_open(out / "report.md") as f:
        f.write(report.encode())
    sent = tuple(sorted((out / "sent").glob(f"*-q{quality}.jpg")))
    return Showcase(psnr=psnr, picks=picks, report=report, files=(*figures, out / "report.md", *sent))


def for_terminal(report: str, out: str | Path) -> str:
    """The report as the CLI prints it: each figure's link becomes its path."""
    out = Path(out)
    for alt, file in (("clean", "comparison.png"), ("compressed", "compressed.png")):
        report = report.replace(f"![{alt}]({file})", f"figure: {out / file}")
    return report
