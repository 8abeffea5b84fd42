"""The demo: the main job on photos that ship with scikit-image, so it runs with no data at all.

For now it evaluates the bicubic baseline on the embedded photos under both protocols; the training issue turns
it into a run that trains the study's 963-parameter EDSR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysr.evaluate import bicubic_upscaler, evaluate
from tinysr.metrics import PROTOCOLS

#: scikit-image's bundled real photos (RGB), by name.
EMBEDDED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle_left")


def embedded_photos(names: tuple[str, ...] = EMBEDDED_PHOTOS) -> list[tuple[str, np.ndarray]]:
    """(name, HWC RGB uint8) for scikit-image's bundled photos."""
    from skimage import data

    photos = []
    for name in names:
        img = getattr(data, name)()
        photos.append((name, np.ascontiguousarray(img[..., :3].astype(np.uint8))))
    return photos


def run_demo(*, out: str | Path, scale: int = 2) -> int:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    photos = embedded_photos()
    lines = []
    for name, protocol in PROTOCOLS.items():
        report = evaluate(bicubic_upscaler(scale), photos, scale=scale, protocol=protocol,
                          dataset="scikit-image photos", model="bicubic", progress=True)
        lines.append(report.to_table())
    text = "\n\n".join(lines)
    print(text)
    (out / "report.md").write_text(text + "\n")
    return 0
