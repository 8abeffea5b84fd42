"""The study's figures from run folders (matplotlib, Agg backend): learning curves, PSNR against parameters, and
a visual comparison (crops of bicubic | each model | HR, like the study's Figure 3).

Convention: images are HWC RGB uint8 at every step here; SR is quantised to uint8 before display.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinysr.data.degrade import shrink_hr  # noqa: E402
from tinysr.data.folder import image_folder  # noqa: E402
from tinysr.data.io import read_image  # noqa: E402
from tinysr.evaluate import bicubic_lr, bicubic_upscaler, mod_crop  # noqa: E402
from tinysr.experiments.results import RunRecord, RunSummary  # noqa: E402
from tinysr.experiments.tables import Table, Validation, validation_of  # noqa: E402
from tinysr.models.window import upscale_array  # noqa: E402
from tinysr.metrics import PROTOCOLS, quantize  # noqa: E402
from tinysr.models.weights import load_model  # noqa: E402
from tinysr.train.runs import RUN_BEST  # noqa: E402

#: A CPU visual skips models above this many multiply-adds x 2 (a 160 M-parameter net on a crop takes minutes).
CPU_FLOP_BUDGET = 5e11
VISUAL_MAX_RUNS = 4


def _title(table: Table, what: str) -> str:
    protocols = "; ".join(dict.fromkeys(PROTOCOLS[v.protocol].describe(v.scale) for v in table.bicubic))
    return f"{table.name}: {what}\n" + "\n".join(textwrap.wrap(protocols, 90))


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(table: Table, key: str, ylabel: str, path: Path) -> Path:
    """One line per run of `key` in metrics.jsonl against the step (the study's Figures 4-11)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for run, summary in zip(table.runs, table.summaries):
        points = [(m["step"], m[key]) for m in run.metrics if m.get(key) is not None]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=f"{summary.label} ({summary.params:,} params)", linewidth=1.2,
                    marker="o", markersize=3)  # the points are the validations
    if key == "val_psnr":
        for val, psnr in table.bicubic.items():
            if psnr is not None:
                ax.axhline(psnr, color="grey", linestyle="--", linewidth=1, label=f"bicubic, {val.label}")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(_title(table, ylabel), fontsize=9)
    return _save(fig, path)


def plot_psnr_vs_params(table: Table, path: Path) -> Path:
    """Best validation PSNR against trainable parameters (log x), with each bicubic level as a horizontal line."""
    fig, ax = plt.subplots(figsize=(8, 5))
    done = [s for s in table.summaries if s.best_psnr is not None]
    ax.plot([s.params for s in done], [s.best_psnr for s in done], "o-", color="C0", label="best validation PSNR")
    for s in done:
        ax.annotate(s.label, (s.params, s.best_psnr), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for i, (val, psnr) in enumerate(table.bicubic.items()):
        if psnr is not None:
            ax.axhline(psnr, color=f"C{i + 1}", linestyle="--", linewidth=1, label=f"bicubic, {val.label}: {psnr:.2f}")
    if done:
        ax.set_xscale("log")  # a log axis needs positive data: a table of runs with no validation yet has none
    else:
        ax.text(0.5, 0.5, "no run has validated yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(_title(table, "best validation PSNR against parameters"), fontsize=9)
    return _save(fig, path)


# --- Visual comparison -------------------------------------------------------------------------------------------
def _detail_crop(hr: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (y, x) of the size x size HR window with the most gradient energy, on a grid of stride size/2."""
    grey = hr.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    stride = max(size // 2, 1)
    best, where = -1.0, (0, 0)
    for y in range(0, hr.shape[0] - size + 1, stride):
        for x in range(0, hr.shape[1] - size + 1, stride):
            e = float(energy[y:y + size - 1, x:x + size - 1].mean())
            if e > best:
                best, where = e, (y, x)
    return where


def _margin(run: RunRecord) -> int:
    """LR pixels of context that decide an output pixel: 2 per residual block plus head, body end and upsampler."""
    return 2 * int(run.config["model"].get("n_blocks", 8)) + 4


def _upscale_window(run: RunRecord, lr: np.ndarray, box: tuple[int, int, int], scale: int, device: str) -> np.ndarray:
    """The model's SR of the LR window `box` = (y, x, size) cut with its full receptive margin, so that the result
    equals a full-image SR there; HWC uint8 of (size*scale)^2."""
    y, x, size = box
    m = _margin(run)
    y0, x0 = max(y - m, 0), max(x - m, 0)
    window = lr[y0:y + size + m, x0:x + size + m]
    model, _ = load_model(run.path / RUN_BEST)
    sr = upscale_array(model, np.ascontiguousarray(window), device=device)
    oy, ox = (y - y0) * scale, (x - x0) * scale
    return quantize(sr[oy:oy + size * scale, ox:ox + size * scale])


def _visual_runs(table: Table, val: Validation, lr_side: int, device: str) -> list[tuple[RunRecord, RunSummary]]:
    """Up to VISUAL_MAX_RUNS runs with best weights on `val`, spread over the parameter range, within the budget."""
    pairs = [(r, s) for r, s in zip(table.runs, table.summaries)
             if validation_of(r) == val and (r.path / RUN_BEST).is_file()
             and (device != "cpu" or 2 * s.params * (lr_side + 2 * _margin(r)) ** 2 <= CPU_FLOP_BUDGET)]
    if len(pairs) > VISUAL_MAX_RUNS:
        idx = np.unique(np.linspace(0, len(pairs) - 1, VISUAL_MAX_RUNS).round().astype(int))
        pairs = [pairs[i] for i in idx]
    return pairs


def _visual_images(val: Validation, count: int) -> list[tuple[str, np.ndarray]]:
    """The first `count` validation HR images, shrunk like training (hr_downscale) and mod-cropped."""
    paths = image_folder(val.folder).hr_paths[:count]
    return [(p.stem, mod_crop(shrink_hr(read_image(p)[0], val.hr_downscale), val.scale)) for p in paths]


def plot_visual(table: Table, path: Path, *, device: str = "cpu", n_images: int = 2, crop: int = 96) -> Path | None:
    """Crops of bicubic | each model | HR for the first `n_images` validation images; None if nothing to show."""
    val = next(iter(table.bicubic))
    lr_size = crop // val.scale
    runs = _visual_runs(table, val, lr_size, device)
    if not runs or not val.folder or not Path(val.folder).is_dir():  # split runs: no folder of images to crop
        return None
    images = _visual_images(val, n_images)
    fig, axes = plt.subplots(len(images), len(runs) + 2, figsize=(2.6 * (len(runs) + 2), 2.9 * len(images) + 0.6),
                             squeeze=False, layout="constrained")  # constrained: the suptitle never covers a panel
    for row, (name, hr) in zip(axes, images):
        size = min(lr_size, hr.shape[0] // val.scale, hr.shape[1] // val.scale)
        y, x = (c // val.scale for c in _detail_crop(hr, size * val.scale))
        lr = bicubic_lr(hr, val.scale)
        hr_crop = hr[y * val.scale:(y + size) * val.scale, x * val.scale:(x + size) * val.scale]
        bic = quantize(bicubic_upscaler(val.scale)(lr))[y * val.scale:(y + size) * val.scale,
                                                        x * val.scale:(x + size) * val.scale]
        psnr = table.bicubic[val]
        panels = [(bic, "bicubic" + (f"\n{psnr:.2f} dB (val)" if psnr is not None else ""))]
        panels += [(_upscale_window(r, lr, (y, x, size), val.scale, device),
                    f"{s.label}\n{s.best_psnr:.2f} dB (val)" if s.best_psnr is not None else s.label) for r, s in runs]
        panels.append((hr_crop, f"HR ({name})"))
        for ax, (img, title) in zip(row, panels):
            ax.imshow(img, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle(_title(table, f"crops of {val.label}, x{val.scale}"), fontsize=9)
    return _save(fig, path)


def table_figures(table: Table, out: Path, *, stem: str, device: str = "cpu", visual: bool = True) -> list[Path]:
    """Every figure of one table, written as `<stem>-<kind>.png` into `out`."""
    figures = [
        plot_curves(table, "val_psnr", "validation PSNR (dB)", out / f"{stem}-psnr.png"),
        plot_curves(table, "train_loss", "training L1 loss (0..255)", out / f"{stem}-loss.png"),
        plot_psnr_vs_params(table, out / f"{stem}-params.png"),
    ]
    shown = plot_visual(table, out / f"{stem}-visual.png", device=device) if visual else None
    return figures + ([shown] if shown is not None else [])
