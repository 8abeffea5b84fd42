"""Pareto figures: PSNR against deployed parameters and against MACs per 720p output, one figure per scale.

Input: `testsets.TestRow`s, for one PSNR column ("val" or a test set such as "Set5"). Our runs are filled circles
joined in order of size, bicubic is a horizontal line (measured: solid; published: dotted), published models are
open squares labelled with their names. On the MACs plot our runs sit at conv + anchor MACs (what a deployment
computes) with a small x at conv MACs only; published models sit at their ESTIMATED MACs (`references.py`).
References are drawn only on a test-set column, since validation images are not the papers' images.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from tinysr.experiments.testsets import TestRow  # noqa: E402

AXES = {"params": "deployed parameters (log scale)", "macs": "MACs per 1280x720 output (log scale)"}


def _x(row: TestRow, axis: str) -> float | None:
    if axis == "params":
        return row.params
    return None if row.macs is None else row.macs + (row.anchor_macs or 0)


def _short(row: TestRow) -> str:
    """"tiny-1k-x2" -> "1k" (the family and scale are in the legend and the axis)."""
    return row.label.removeprefix("tiny-").removesuffix(f"-x{row.scale}")


def _draw_runs(ax: plt.Axes, rows: list[TestRow], column: str, axis: str) -> None:
    """Each model family's runs as one line (in size order), labelled by their short names."""
    runs = [r for r in rows if r.kind == "run" and column in r.psnr and _x(r, axis)]
    for i, family in enumerate(dict.fromkeys(r.family for r in runs)):
        points = sorted((_x(r, axis), r.psnr[column], r) for r in runs if r.family == family)
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-" if len(points) > 1 else "D",
                color=f"C{i}", label=f"ours: {family or 'runs'}" + (" (conv + anchor MACs)" if axis == "macs"
                                                                     and points[0][2].anchor_macs else ""))
        for k, (x, y, r) in enumerate(points):
            ax.annotate(_short(r), (x, y), textcoords="offset points", xytext=(0, -12 if k % 2 else 6),
                        ha="center", fontsize=7, color=f"C{i}")
            if axis == "macs" and r.anchor_macs:
                ax.plot([r.macs], [y], "x", color=f"C{i}", markersize=5, alpha=0.6)
    if axis == "macs" and any(r.anchor_macs for r in runs):
        ax.plot([], [], "x", color="grey", alpha=0.6, label="ours, convs only (no bicubic anchor / chroma)")


def _draw_references(ax: plt.Axes, rows: list[TestRow], column: str, axis: str) -> None:
    refs = [r for r in rows if r.kind == "published" and column in r.psnr and _x(r, axis)]
    for r in refs:
        ax.plot([_x(r, axis)], [r.psnr[column]], "s", mfc="none", color="C3", markersize=7)  # C0-C2: ours
        ax.annotate(r.label, (_x(r, axis), r.psnr[column]), textcoords="offset points", xytext=(5, 3), fontsize=7,
                    color="C3")
    if refs:
        what = "published (MACs estimated: params x LR pixels)" if axis == "macs" else "published"
        ax.plot([], [], "s", mfc="none", color="C3", label=what)


def _draw_bicubic(ax: plt.Axes, rows: list[TestRow], column: str) -> None:
    for r in rows:
        if r.kind in ("bicubic", "published bicubic") and column in r.psnr:
            style = "-" if r.kind == "bicubic" else ":"
            ax.axhline(r.psnr[column], color="grey", linestyle=style, linewidth=1,
                       label=f"{r.label}: {r.psnr[column]:.2f} dB")


def plot_pareto(rows: list[TestRow], *, column: str, scale: int, axis: str, title: str, path: Path) -> Path:
    """PSNR on `column` against `axis` ("params" or "macs") for the rows at `scale`; writes and returns `path`."""
    rows = [r for r in rows if r.scale == scale]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    _draw_runs(ax, rows, column, axis)
    if column != "val":
        _draw_references(ax, rows, column, axis)
    _draw_bicubic(ax, rows, column)
    ax.set_xscale("log")
    ax.set_xlabel(AXES[axis])
    ax.set_ylabel(f"PSNR (dB), {'validation split' if column == 'val' else column}, x{scale}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def pareto_figures(rows: list[TestRow], out: Path, *, stem: str, column: str, subtitle: str) -> list[Path]:
    """Both Pareto plots for every scale with a run measured on `column`: `<stem>-pareto-<axis>-x<scale>.png`."""
    scales = sorted({r.scale for r in rows if r.kind == "run" and column in r.psnr})
    return [plot_pareto(rows, column=column, scale=s, axis=axis, path=out / f"{stem}-pareto-{axis}-x{s}.png",
                        title=f"{stem}: PSNR on {column} against {AXES[axis].split(' (')[0]}, x{s}\n{subtitle}")
            for s in scales for axis in AXES]
