"""A visual comparison on compressed input: what the demo and `tinysr report` show of the JPEG-aware models.

One HR photo is made into the LR a sender would send (MATLAB bicubic, then a JPEG of quality `quality`, the
`bicubic+jpegQ` degradation), then brought back by bicubic, the clean bundled model and the JPEG-aware one that
`--model auto` takes for that quality (`tinysr.delivery.auto.band_model`). The
figure shows, per upscaler, a crop of the busiest region at `ZOOM`x, large enough to see blocks and ringing, with its
PSNR under the `standard` protocol; the HR crop is last.

Convention: HWC RGB uint8 in; the figure is a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tinysr.data.degrade import degrade, mod_crop
from tinysr.evaluate import bicubic_upscaler
from tinysr.delivery.auto import band_model
from tinysr.infer.load import load_network
from tinysr.infer.upscale import upscale
from tinysr.metrics import PROTOCOLS, measure, quantize
from tinysr.showcase.figure import busiest_crop

CLEAN = "tiny-1k-x2"  # the clean bundled model compared, at x2
QUALITY = 40
CROP, ZOOM = 48, 4  # HR pixels of the crop, and how much it is enlarged on screen


def compare(hr: np.ndarray, *, quality: int = QUALITY
            ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """(mod-cropped HR, {upscaler: SR uint8}, {upscaler: PSNR, standard protocol}) of `hr` sent as a JPEG at x2:
    bicubic, the clean model and `auto`'s model for `quality`."""
    hr = mod_crop(hr, 2)
    lr = degrade(hr, 2, f"bicubic+jpeg{quality}")
    srs = {"bicubic": quantize(bicubic_upscaler(2)(lr))}
    for name in dict.fromkeys((CLEAN, band_model(quality, scale=2) or CLEAN)):
        srs[name] = upscale(lr, load_network(name, scale=2)[0])
    scores = {name: measure(sr, hr, scale=2, protocol=PROTOCOLS["standard"])[0] for name, sr in srs.items()}
    return hr, srs, scores


def write_figure(path: Path, hr: np.ndarray, srs: dict[str, np.ndarray], scores: dict[str, float], *,
                 quality: int = QUALITY, title: str = "") -> Path:
    """The crops side by side (matplotlib's Agg canvas, no pyplot state), PSNR in each title."""
    y, x = busiest_crop(hr, CROP)
    panels = [(f"{name}\n{scores[name]:.2f} dB", sr) for name, sr in srs.items()] + [("HR", hr)]
    fig = Figure(figsize=(2.6 * len(panels), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    for i, (label, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(np.repeat(np.repeat(img[y:y + CROP, x:x + CROP], ZOOM, 0), ZOOM, 1), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title}x2 from a JPEG of quality {quality} (PSNR-Y, standard protocol), crop at ({x}, {y}), "
                 f"{ZOOM}x", fontsize=9)
    fig.savefig(path)
    return Path(path)
