"""Evaluate any upscaler on a set of HR images under a named protocol.

Every upscaler, bicubic included, goes through one path:
HR (HWC RGB uint8) -> mod-crop to the scale -> MATLAB `imresize` down (float path, rounded to uint8) = LR
-> upscaler(LR) -> SR (HWC RGB, float or uint8, 0..255) -> `metrics.measure` under the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from tinysr.data.degrade import degrade, mod_crop
from tinysr.metrics import Protocol, measure
from tinysr.resize import imresize

#: An upscaler maps an LR image (HWC RGB uint8) to an SR image (HWC RGB, 0..255, float or uint8) `scale` times larger.
Upscaler = Callable[[np.ndarray], np.ndarray]


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The benchmark LR image: MATLAB bicubic (float path) of the mod-cropped HR, rounded once to uint8 (the
    `bicubic` degradation, so training data and evaluation share one definition)."""
    return degrade(hr, scale, "bicubic")


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
    rows: list[dict] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        return {k: float(np.mean([r[k] for r in self.rows])) for k in ("psnr", "ssim")}

    def to_dict(self) -> dict:
        return {
            "model": self.model, "dataset": self.dataset, "scale": self.scale, "protocol": self.protocol.name,
            "protocol_description": self.protocol.describe(self.scale), "images": self.rows, "mean": self.mean,
        }

    def to_table(self) -> str:
        lines = [f"# {self.model} on {self.dataset}, x{self.scale}", f"# {self.protocol.describe(self.scale)}",
                 f"{'image':<28} {'PSNR':>8} {'SSIM':>8}"]
        lines += [f"{r['image']:<28} {r['psnr']:8.2f} {r['ssim']:8.4f}" for r in self.rows]
        lines.append(f"{'mean':<28} {self.mean['psnr']:8.2f} {self.mean['ssim']:8.4f}")
        return "\n".join(lines)


def evaluate(
    upscaler: Upscaler,
    images: Iterable[tuple[str, np.ndarray]],
    *,
    scale: int,
    protocol: Protocol,
    dataset: str = "",
    model: str = "",
    progress: bool = False,
) -> EvalReport:
    """Measure `upscaler` on (name, HR HWC RGB uint8) pairs; LR is made here with `bicubic_lr`."""
    report = EvalReport(protocol=protocol, scale=scale, dataset=dataset, model=model)
    for name, hr in tqdm(list(images), desc=f"eval {dataset}", disable=not progress, leave=False):
        hr = mod_crop(hr, scale)
        sr = upscaler(bicubic_lr(hr, scale))
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: upscaler gave {sr.shape}, expected {hr.shape}")
        p, s = measure(sr, hr, scale=scale, protocol=protocol)
        report.rows.append({"image": name, "psnr": p, "ssim": s})
    return report
