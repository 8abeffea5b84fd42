"""`tinysr demo --train`: train the study's 963-parameter EDSR on photos that ship with scikit-image, with no data.

Needs the [train] extra (torch, scikit-image, matplotlib). The demo of the core install, which trains nothing, is
`tinysr.showcase.demo`.

Steps:
1. write scikit-image's bundled photos as PNGs into a temporary image folder (one held out for validation);
2. decode and degrade them through the cache (MATLAB bicubic x2, like every other run);
3. start the run as every run starts (`tinysr.train.start.start_run`: seeded, deterministic) and train with
   `tinysr.train.loop.train` into OUT/run, a normal run folder (`tinysr eval --model OUT/run` works);
4. measure the best weights and bicubic on the held-out photo under both protocols;
5. write OUT/comparison.png (crops: bicubic | model | HR) and OUT/report.md;
6. the compressed case (`tinysr.experiments.compressed`): the held-out photo sent as a JPEG of quality 40 at x2,
   brought back by bicubic, the clean bundled model and the JPEG-aware one: OUT/compressed.png and a table.

The recipe is a CPU-speed one, not the study's: batch 16, LR patch 32, learning rate 5e-3 with a cosine schedule
(a 963-parameter net tolerates a high rate), 4,000 steps.

Convention: photos are HWC RGB uint8.
"""

from __future__ import annotations

import dataclasses
import shlex
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from skimage import data

from tinysr.data.cache import load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.io import write_image
from tinysr.errors import TinySRError
from tinysr.evaluate import bicubic_upscaler
from tinysr.experiments import compressed
from tinysr.models.window import upscale_array
from tinysr.metrics import PROTOCOLS, measure, quantize
from tinysr.models import EDSRConfig, config_to_dict, count_params
from tinysr.models.weights import load_model
from tinysr.train import runs
from tinysr.train.config import DataConfig, RunConfig, TrainConfig
from tinysr.train.loop import train
from tinysr.train.start import start_run

#: scikit-image's bundled real photos (RGB), by name: name -> loader of `skimage.data`.
EMBEDDED_PHOTOS: dict[str, Callable] = {
    "astronaut": lambda data: data.astronaut(),
    "chelsea": lambda data: data.chelsea(),
    "coffee": lambda data: data.coffee(),
    "rocket": lambda data: data.rocket(),
    "immunohistochemistry": lambda data: data.immunohistochemistry(),
    "motorcycle": lambda data: data.stereo_motorcycle()[0],  # the left view of the stereo pair
}
HELD_OUT = "chelsea"
DEMO_MODEL = EDSRConfig(n_blocks=0, n_feats=4, scale=2)  # the study's headline: 963 parameters
DEMO_RECIPE = TrainConfig(steps=4000, batch_size=16, patch=32, learning_rate=5e-3, schedule="cosine",
                          eval_every=500, protocol="study", seed=0)
CROP = 64  # side of the HR crops in the figure


def embedded_photos(names: tuple[str, ...] = tuple(EMBEDDED_PHOTOS)) -> list[tuple[str, np.ndarray]]:
    """(name, HWC RGB uint8) for scikit-image's bundled photos."""
    return [(name, np.ascontiguousarray(EMBEDDED_PHOTOS[name](data)[..., :3].astype(np.uint8))) for name in names]


def _prepare_pairs(workdir: Path, *, scale: int, progress: bool):
    """Steps 1-2: photos -> train/ and val/ PNG folders -> cached (train pairs, val pairs)."""
    for name, photo in embedded_photos():
        folder = workdir / ("val" if name == HELD_OUT else "train")
        folder.mkdir(exist_ok=True)
        write_image(folder / f"{name}.png", photo)
    return tuple(load_pairs(image_folder(workdir / part), scale=scale, cache_dir=workdir / "cache",
                            progress=progress) for part in ("train", "val"))


def _measure_all(model, lr: np.ndarray, hr: np.ndarray, *, scale: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Step 4: ({upscaler: {protocol: (PSNR, SSIM)}}, {upscaler: SR}) on the held-out photo."""
    srs = {"bicubic": bicubic_upscaler(scale)(lr), "EDSR 0x4": upscale_array(model, lr)}
    scores = {name: {p: measure(sr, hr, scale=scale, protocol=PROTOCOLS[p]) for p in PROTOCOLS}
              for name, sr in srs.items()}
    return scores, srs


def write_figure(path: Path, srs: dict[str, np.ndarray], hr: np.ndarray, scores: dict) -> None:
    """Step 5: crops of bicubic | model | HR side by side (matplotlib's Agg canvas, no pyplot state)."""
    y, x = compressed.busiest_crop(hr, CROP)
    panels = [(f"{n}\n{scores[n]['study'][0]:.2f} dB (study)", quantize(sr)) for n, sr in srs.items()]
    panels.append(("HR (ground truth)", hr))
    fig = Figure(figsize=(3 * len(panels), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(img[y:y + CROP, x:x + CROP], interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{HELD_OUT} (held out), x2, crop at ({x}, {y})", fontsize=10)
    fig.savefig(path, dpi=100)


def compressed_section(out: Path, hr: np.ndarray) -> str:
    """Step 6: OUT/compressed.png and its lines of report.md."""
    hr, srs, scores = compressed.compare(hr)
    compressed.write_figure(out / "compressed.png", hr, srs, scores, title=f"{HELD_OUT} (held out), ")
    lines = ["", f"## Compressed input: {HELD_OUT} sent as a JPEG of quality {compressed.QUALITY} at x2", "",
             "| upscaler | PSNR-Y (standard) | over bicubic |", "|---|---|---|"]
    lines += [f"| {n} | {p:.2f} dB | {p - scores['bicubic']:+.2f} dB |" for n, p in scores.items()]
    return "\n".join(lines + ["", "![compressed](compressed.png)", ""])


def report_text(scores: dict, *, params: int, steps: int, seconds: float, command: str) -> str:
    """report.md: the held-out scores of both upscalers under both protocols, and the margin."""
    lines = [f"# tinysr demo: {params}-parameter EDSR vs bicubic, x2", "",
             f"Trained {steps} steps on scikit-image photos ({seconds:.0f} s in all); held out: `{HELD_OUT}`.",
             f"Command: `{command}`", "", "| protocol | bicubic PSNR / SSIM | EDSR 0x4 PSNR / SSIM | margin |",
             "|---|---|---|---|"]
    for p in PROTOCOLS:
        (bp, bs), (mp, ms) = scores["bicubic"][p], scores["EDSR 0x4"][p]
        lines.append(f"| {p} | {bp:.2f} dB / {bs:.4f} | {mp:.2f} dB / {ms:.4f} | {mp - bp:+.2f} dB |")
    lines += ["", *[f"- {PROTOCOLS[p].describe(2)}" for p in PROTOCOLS], "", "![crops](comparison.png)", ""]
    return "\n".join(lines)


def demo_config(recipe: TrainConfig) -> RunConfig:
    """config.json of the demo's run: the photos are named by their scikit-image loaders, not by folders."""
    data = DataConfig(train=tuple(f"skimage.data:{n}" for n in EMBEDDED_PHOTOS if n != HELD_OUT),
                      val=f"skimage.data:{HELD_OUT}", scale=DEMO_MODEL.scale, degradation="bicubic")
    return RunConfig(model=config_to_dict(DEMO_MODEL), train=recipe, data=data, protocol=recipe.protocol,
                     seed=recipe.seed)


def run_demo(*, out: str | Path, steps: int | None = None, threads: int = 1, progress: bool = True,
             force: bool = False) -> int:
    """Train the 963-parameter EDSR on the embedded photos and report it against bicubic; see the module doc.

    threads: torch CPU threads while the demo trains (restored after). One by default: the net's 4-filter convs are
    too small to split, and on a busy machine spinning OpenMP threads make a step many times slower.
    force: replace the demo's files in a non-empty `out` (without it, such an `out` is refused before any work).
    """
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TinySRError(f"{out}: exists and is not empty; pass --force to replace the demo's run, report and "
                          "figure in it, or choose another --out")
    recipe = DEMO_RECIPE if steps is None else dataclasses.replace(DEMO_RECIPE, steps=steps,
                                                                   eval_every=min(steps, DEMO_RECIPE.eval_every))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinySRError(f"cannot create {out}: {exc.strerror or exc}") from None
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinysr-demo-") as tmp:
        pairs = _prepare_pairs(Path(tmp), scale=DEMO_MODEL.scale, progress=progress)
        with start_run(demo_config(recipe), out / "run", resume=False, force=True, threads=threads, pairs=pairs,
                       progress=progress) as started:
            train(started.model, *pairs, config=recipe, run_dir=started.run_dir, progress=progress)
        best, _ = load_model(started.run_dir / runs.RUN_BEST)
        lr, hr = np.array(pairs[1].lr[0]), np.array(pairs[1].hr[0])  # copies: the cache goes with tmp
    scores, srs = _measure_all(best, lr, hr, scale=DEMO_MODEL.scale)
    write_figure(out / "comparison.png", srs, hr, scores)
    steps_option = f" --steps {steps}" if steps is not None else ""
    command = f"tinysr demo --train{steps_option} --out {shlex.quote(str(out))}"
    text = report_text(scores, params=count_params(best), steps=recipe.steps, seconds=time.monotonic() - began,
                       command=command)
    text += compressed_section(out, hr)
    runs_text = text.replace("![crops](comparison.png)", f"figure: {out / 'comparison.png'}, run: {started.run_dir}")
    runs_text = runs_text.replace("![compressed](compressed.png)", f"figure: {out / 'compressed.png'}")
    print(runs_text)
    (out / "report.md").write_text(text)
    return 0
