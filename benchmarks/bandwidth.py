"""Bandwidth study: is it better to send an image at full size, or downscaled and brought back by tinysr?

    python benchmarks/bandwidth.py --out bw/ [--limit N | --limit N_BSD100 N_URBAN100] [--codecs jpeg webp avif]
                                   [--data ../shared/data] [--replot]

Rate-distortion curves on BSD100 and Urban100 (test sets: measured, never tuned on): bits per HR pixel (file bytes x
8 / HR pixels, no metadata) against PSNR-Y and SSIM-Y for
- full size: the HR image through the codec at each quality;
- x2 / x3 / x4: MATLAB-bicubic LR (`tinysr.data.degrade.bicubic`) through the same codec, decoded, upscaled by
  MATLAB bicubic, by the clean bundled model and by the JPEG-aware one where bundled (`tinysr.delivery.auto.AUTO_MODELS`),
  and by "auto": the model `tinysr upscale --model auto` picks for that file (for a JPEG, the net of its quality's
  band; for a lossy WebP or AVIF, the blind JPEG-aware net), as `tinysr encode`'s receiver does.
Protocol: HR mod-cropped to 12 (so every scale sees the same pixels), `tinysr.metrics` standard protocol (Y of
MATLAB rgb2ycbcr, SR rounded to uint8) with a 4-pixel border cropped for every curve, mean over images at each
quality. Prints the table, the gap to full size at 0.25 bpp (log-bpp interpolation) and the crossover bitrates
(below the crossover, downscaling wins); writes OUT/bandwidth.csv (per image), OUT/curves.csv and OUT/bandwidth.png.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, features

from tinysr.data.degrade import bicubic, mod_crop
from tinysr.data.folder import is_image_file
from tinysr.data.io import read_image
from tinysr.delivery.auto import AUTO_MODELS, choose_model, coded_source, network
from tinysr.infer.load import bundled_names
from tinysr.infer.upscale import upscale
from tinysr.metrics import PROTOCOLS, prepare_pair, psnr, ssim
from tinysr.resize import imresize, to_uint8

SETS = {"BSD100": 40, "Urban100": 20}  # set -> default image limit (bounds CPU time)
FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
QUALITIES = (2, 5, 10, 15, 25, 40, 60, 75, 85, 92, 97)
SCALES = (2, 3, 4)
BORDER = 4
TARGET_BPP = 0.25


def compress(img: np.ndarray, *, codec: str, quality: int) -> tuple[int, np.ndarray]:
    """(bytes, decoded HWC RGB uint8) of `img` through Pillow's `codec` at `quality`."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format=FORMATS[codec], quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return buffer.tell(), np.asarray(im.convert("RGB"))


def measure_y(sr: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) on Y, standard protocol, `BORDER` pixels cropped."""
    sr_y, hr_y = prepare_pair(sr, hr, scale=BORDER, protocol=PROTOCOLS["standard"])
    return psnr(sr_y, hr_y), ssim(sr_y, hr_y)


def upscalers(scale: int) -> dict[str, callable]:
    """name -> HWC uint8 LR -> HWC uint8 SR at `scale`: bicubic, the clean model, the JPEG-aware one if bundled."""
    found = {"bicubic": lambda lr: to_uint8(imresize(lr.astype(np.float64), float(scale)))}
    for name in AUTO_MODELS[scale]:
        if name is not None and name in bundled_names():
            found[name] = model_upscaler(name)
    return found


def model_upscaler(name: str) -> callable:
    """HWC uint8 LR -> HWC uint8 SR through the bundled network `name` (torch, whole image)."""
    net = network(name)
    return lambda lr: upscale(lr, net, fused=False)


def auto_choice(codec: str, quality: int, *, scale: int) -> str:
    """The bundled model `--model auto` picks for a file of `codec` at `quality`."""
    return choose_model(coded_source(codec, quality), scale=scale)


def image_rows(hr: np.ndarray, *, codecs: list[str], qualities: tuple[int, ...]) -> list[dict]:
    """Every (codec, scale, upscaler, quality) point of one HR image."""
    rows, pixels = [], hr.shape[0] * hr.shape[1]
    lrs = {s: bicubic(hr, s) for s in SCALES}
    for codec in codecs:
        for q in qualities:
            n_bytes, decoded = compress(hr, codec=codec, quality=q)
            rows.append(dict(codec=codec, scale=1, upscaler="full size", quality=q, bpp=8 * n_bytes / pixels,
                             **dict(zip(("psnr", "ssim"), measure_y(decoded, hr)))))
            for s in SCALES:
                n_bytes, decoded = compress(lrs[s], codec=codec, quality=q)
                measured = {}
                for name, fn in upscalers(s).items():
                    measured[name] = measure_y(fn(decoded), hr)
                    rows.append(dict(codec=codec, scale=s, upscaler=name, quality=q, bpp=8 * n_bytes / pixels,
                                     **dict(zip(("psnr", "ssim"), measured[name]))))
                chosen = auto_choice(codec, q, scale=s)
                if chosen not in measured:
                    measured[chosen] = measure_y(model_upscaler(chosen)(decoded), hr)
                rows.append(dict(codec=codec, scale=s, upscaler="auto", quality=q, bpp=8 * n_bytes / pixels,
                                 **dict(zip(("psnr", "ssim"), measured[chosen]))))
    return rows


def curves(rows: list[dict]) -> dict[tuple, np.ndarray]:
    """(set, codec, scale, upscaler) -> array of (mean bpp, mean PSNR, mean SSIM) per quality, sorted by bpp."""
    groups: dict[tuple, dict[int, list]] = {}
    for r in rows:
        key = (r["set"], r["codec"], r["scale"], r["upscaler"])
        groups.setdefault(key, {}).setdefault(r["quality"], []).append((r["bpp"], r["psnr"], r["ssim"]))
    return {k: np.array(sorted(tuple(np.mean(v, axis=0)) for v in g.values()), dtype=float).reshape(-1, 3)
            for k, g in groups.items()}


def at_bpp(curve: np.ndarray, bpp: float, *, column: int = 1) -> float:
    """PSNR (column 1) or SSIM (column 2) of a curve at `bpp`, interpolated linearly in log(bpp); NaN outside the
    curve's range."""
    x = np.log(curve[:, 0])
    if not x[0] <= np.log(bpp) <= x[-1]:
        return float("nan")
    return float(np.interp(np.log(bpp), x, curve[:, column]))


def crossovers(curve: np.ndarray, full: np.ndarray) -> list[float]:
    """Bitrates (bpp) where `curve` and `full` cross, on a fine log grid over the range both cover."""
    lo, hi = max(curve[0, 0], full[0, 0]), min(curve[-1, 0], full[-1, 0])
    if lo >= hi:
        return []
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 400))
    diff = np.array([at_bpp(curve, b) - at_bpp(full, b) for b in grid])
    flips = np.nonzero(np.diff(np.sign(diff)) != 0)[0]
    logs = np.log(grid)
    return [float(np.exp(logs[i] + (logs[i + 1] - logs[i]) * diff[i] / (diff[i] - diff[i + 1]))) for i in flips]


def no_crossing(curve: np.ndarray, full: np.ndarray) -> str:
    """Which side wins over the whole range both curves cover, when they do not cross."""
    lo, hi = max(curve[0, 0], full[0, 0]), min(curve[-1, 0], full[-1, 0])
    if lo >= hi:
        return "no common range"
    mid = float(np.sqrt(lo * hi))
    side = "downscaling" if at_bpp(curve, mid) > at_bpp(full, mid) else "full size"
    return f"none: {side} wins over {lo:.2f}-{hi:.2f}"


def report(table: dict[tuple, np.ndarray]) -> list[str]:
    """Markdown lines: per set, codec, scale and upscaler, PSNR/SSIM at `TARGET_BPP`, the PSNR gap to full size,
    and the crossovers (downscaling wins below them; "none" where the curves do not cross in the range both cover)."""
    lines = [f"| set | codec | method | PSNR-Y at {TARGET_BPP} bpp | SSIM-Y | gap to full size (dB) | crossovers (bpp) |",
             "|---|---|---|---|---|---|---|"]
    for (name, codec, scale, upscaler), curve in sorted(table.items(), key=lambda kv: kv[0][:3]):
        full = table[(name, codec, 1, "full size")]
        value, base = at_bpp(curve, TARGET_BPP), at_bpp(full, TARGET_BPP)
        method = "full size" if scale == 1 else f"x{scale} + {upscaler}"
        cross = "" if scale == 1 else ", ".join(f"{b:.3f}" for b in crossovers(curve, full)) or no_crossing(curve, full)
        gap = "" if scale == 1 else f"{value - base:+.2f}"
        if np.isnan(base):
            gap = f"full size >= {full[0, 0]:.2f} bpp" if scale == 1 else "n/a"
        lines.append(f"| {name} | {codec} | {method} | {value:.2f} | {at_bpp(curve, TARGET_BPP, column=2):.4f} | "
                     f"{gap} | {cross} |")
    return lines


def plot(table: dict[tuple, np.ndarray], path: Path) -> None:
    """PSNR-Y against bpp (log axis): a row per set, a column per codec; model lines solid, auto dashed, bicubic
    dotted."""
    sets, codecs = sorted({k[0] for k in table}), sorted({k[1] for k in table})
    fig, axes = plt.subplots(len(sets), len(codecs), figsize=(4 * len(codecs), 3.2 * len(sets)), squeeze=False)
    for (name, codec, scale, upscaler), curve in sorted(table.items()):
        ax = axes[sets.index(name)][codecs.index(codec)]
        style = {"bicubic": ":", "auto": "--"}.get(upscaler, "-")
        ax.plot(curve[:, 0], curve[:, 1], style, marker=".", ms=3, lw=1,
                color=f"C{scale - 1}", label="full size" if scale == 1 else f"x{scale} {upscaler}")
    for ax, (name, codec) in zip(axes.flat, [(n, c) for n in sets for c in codecs]):
        ax.axvline(TARGET_BPP, color="grey", lw=0.5)
        ax.set(xscale="log", xlim=(0.05, 4), title=f"{name} {codec}", xlabel="bits per HR pixel", ylabel="PSNR-Y (dB)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def set_limits(limit: list[int] | None) -> dict[str, int]:
    """set -> images to use: `SETS`' defaults, one N for every set, or one N per set in `SETS`' order."""
    if not limit:
        return dict(SETS)
    return dict(zip(SETS, limit * len(SETS) if len(limit) == 1 else limit))


def read_rows(path: Path) -> list[dict]:
    """The per-image rows of a finished run's bandwidth.csv, numbers parsed."""
    with open(path, newline="") as f:
        return [dict(r, scale=int(r["scale"]), quality=int(r["quality"]), bpp=float(r["bpp"]), psnr=float(r["psnr"]),
                     ssim=float(r["ssim"])) for r in csv.DictReader(f)]


def measure_sets(data: Path, limit: list[int] | None, codecs: list[str]) -> list[dict]:
    """Every image's rows, set by set (prints progress)."""
    rows, start = [], time.perf_counter()
    for name, n in set_limits(limit).items():
        files = sorted(p for p in (data / name).iterdir() if is_image_file(p))[:n]
        for path in files:
            hr = np.ascontiguousarray(mod_crop(read_image(path)[0], 12))
            rows += [dict(set=name, image=path.name, **r) for r in image_rows(hr, codecs=codecs, qualities=QUALITIES)]
        print(f"{name}: {len(files)} images, {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--limit", type=int, nargs="+", help=f"images per set: one N for all, or one per set in the "
                                                              f"order {list(SETS)} (default {SETS})")
    parser.add_argument("--codecs", nargs="+", choices=tuple(FORMATS),
                        default=["jpeg", "webp"] + (["avif"] if features.check("avif") else []))
    parser.add_argument("--replot", action="store_true", help="rebuild the table and plot from OUT/bandwidth.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        rows = read_rows(args.out / "bandwidth.csv")
    else:
        rows = measure_sets(args.data, args.limit, args.codecs)
        write_csv(args.out / "bandwidth.csv", rows)
    table = curves(rows)
    write_csv(args.out / "curves.csv", [{"set": k[0], "codec": k[1], "scale": k[2], "upscaler": k[3], "bpp": p[0],
                                         "psnr": p[1], "ssim": p[2]} for k, c in table.items() for p in c])
    plot(table, args.out / "bandwidth.png")
    print(f"protocol standard (Y of MATLAB rgb2ycbcr, SR rounded to uint8) with a {BORDER}-pixel border for every "
          f"curve, HR mod-cropped to 12; {len({(r['set'], r['image']) for r in rows})} images")
    print("\n".join(report(table)))


if __name__ == "__main__":
    main()
