"""Evaluate any upscaler on a set of HR images under a named protocol and a named degradation.

Every upscaler, bicubic included, goes through one path:
HR (HWC RGB uint8) -> mod-crop to the scale -> LR (HWC RGB uint8, HR/scale): the named degradation of HR
(default ``bicubic``: MATLAB `imresize` down, float path, rounded to uint8; ``bicubic+jpeg50`` then a JPEG round trip;
see `tinysr.data.degrade`), or the user's own LR file of the same stem (`lr_files`)
-> upscaler(LR) -> SR (HWC RGB, float or uint8, 0..255) -> `metrics.measure` under the protocol.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tinysr.data.degrade import degrade, mod_crop, parse_degradation
from tinysr.data.folder import image_folder
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.metrics import Protocol, measure
from tinysr.resize import imresize

#: An upscaler maps an LR image (HWC RGB uint8) to an SR image (HWC RGB, 0..255, float or uint8) `scale` times larger.
Upscaler = Callable[[np.ndarray], np.ndarray]
#: An LR source maps (image name, mod-cropped HR HWC RGB uint8) to that image's LR (HWC RGB uint8, HR/scale).
LRSource = Callable[[str, np.ndarray], np.ndarray]
#: A per-image choice maps an image name to (the upscaler's name, the upscaler) for that image (`--model auto`).
Chooser = Callable[[str], tuple[str, Upscaler]]


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The benchmark LR image: MATLAB bicubic (float path) of the mod-cropped HR, rounded once to uint8 (the
    `bicubic` degradation, so training data and evaluation share one definition)."""
    return degrade(hr, scale, "bicubic")


def degraded_lr(degradation: str, *, scale: int, seed: int = 0) -> LRSource:
    """LR made from HR by the named degradation; a range stage (``jpeg30-95``) draws per image name and `seed`,
    as the training cache does, so a validation image gets the same LR here as in training."""
    pipeline = parse_degradation(degradation)
    return lambda name, hr: pipeline(hr, scale, seed=seed, image_id=name)


def lr_files(folder: str | os.PathLike, *, scale: int, hr_sizes: dict[str, tuple[int, int]]) -> LRSource:
    """LR read from `folder`, paired with each HR image by file stem. Every pair is checked before any is read
    (`hr_sizes`: name -> mod-cropped HR (height, width)): a missing file or an LR size other than HR/scale is a
    one-line TinySRError naming the file. Files are decoded to HWC RGB uint8."""
    paths = {p.stem: p for p in image_folder(folder).hr_paths}
    for name, (h, w) in hr_sizes.items():
        if name not in paths:
            raise TinySRError(f"{Path(folder) / name}.*: --lr-data has no LR file for HR image {name}")
        with Image.open(paths[name]) as img:
            size = img.size
        if size != (w // scale, h // scale):
            raise TinySRError(f"{paths[name]}: LR size {size[0]}x{size[1]} is not HR/{scale} "
                              f"({w // scale}x{h // scale})")
    return lambda name, hr: read_image(paths[name])[0]


def bicubic_upscaler(scale: int) -> Upscaler:
    """MATLAB bicubic upscaling (float path): the baseline row of every table."""
    return lambda lr: imresize(lr.astype(np.float64), float(scale))


@dataclass
class EvalReport:
    """Per-image rows and their means, with the protocol that produced them."""

    protocol: Protocol
    scale: int
    dataset: str
    model: str
    degradation: str = "bicubic"  # the degradation's name, or "files in DIR" for --lr-data
    rows: list[dict] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        return {k: float(np.mean([r[k] for r in self.rows])) for k in ("psnr", "ssim")}

    def to_dict(self) -> dict:
        return {
            "model": self.model, "dataset": self.dataset, "scale": self.scale, "protocol": self.protocol.name,
            "degradation": self.degradation, "protocol_description": self.protocol.describe(self.scale),
            "images": self.rows, "mean": self.mean,
        }

    def to_table(self) -> str:
        lines = [f"# {self.model} on {self.dataset}, x{self.scale}", f"# {self.protocol.describe(self.scale)}",
                 f"# degradation: {self.degradation}",
                 f"{'image':<28} {'PSNR':>8} {'SSIM':>8}"]
        lines += [f"{r['image']:<28} {r['psnr']:8.2f} {r['ssim']:8.4f}" + (f"  {r['model']}" if "model" in r else "")
                  for r in self.rows]
        lines.append(f"{'mean':<28} {self.mean['psnr']:8.2f} {self.mean['ssim']:8.4f}")
        return "\n".join(lines)


def evaluate(
    upscaler: Upscaler | None,
    images: Iterable[tuple[str, np.ndarray]],
    *,
    scale: int,
    protocol: Protocol,
    dataset: str = "",
    model: str = "",
    degradation: str = "bicubic",
    lr_data: str | os.PathLike | None = None,
    progress: bool = False,
    choose: Chooser | None = None,
) -> EvalReport:
    """Measure `upscaler` on (name, HR HWC RGB uint8) pairs; LR is `degradation` of HR (`degraded_lr`), or the
    files of `lr_data` paired by name (`lr_files`), and the report names which.

    choose: instead of one `upscaler` (then None), pick one per image by name; each row then names its model."""
    if (upscaler is None) == (choose is None):
        raise ValueError("give either an upscaler or a per-image choice")
    images = list(images)
    if lr_data is not None:
        sizes = {name: (hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale) for name, hr in images}
        make_lr, used = lr_files(lr_data, scale=scale, hr_sizes=sizes), f"files in {lr_data}"
    else:
        make_lr, used = degraded_lr(degradation, scale=scale), degradation
    report = EvalReport(protocol=protocol, scale=scale, dataset=dataset, model=model, degradation=used)
    for name, hr in tqdm(images, desc=f"eval {dataset}", disable=not progress, leave=False):
        hr = mod_crop(hr, scale)
        chosen, fn = (None, upscaler) if choose is None else choose(name)
        sr = fn(make_lr(name, hr))
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: upscaler gave {sr.shape}, expected {hr.shape}")
        p, s = measure(sr, hr, scale=scale, protocol=protocol)
        report.rows.append({"image": name, "psnr": p, "ssim": s} | ({} if chosen is None else {"model": chosen}))
    return report
