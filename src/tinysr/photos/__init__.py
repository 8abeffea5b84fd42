"""Real photos shipped inside the package (`photos/<name>.png`), so that the demo needs no data and no scikit-image.

`PHOTOS` is the visible table: name -> `Photo` (its file and where it comes from). The README beside the files
gives each photo's provenance, licence and the exact crop. `load_photo(name)` reads one as HWC RGB uint8. The
README says why the files count as clean. The bundled tiny models were trained on T91 + BSD200 (their
`train_command` in `pretrained/models.json`), which do not hold these photos: every bundled model sees them first here.

Nothing here imports torch; Pillow decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tinysr.errors import TinySRError

PHOTOS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Photo:
    """One embedded photo: its file next to this module, and its source and licence (details in README.md)."""

    name: str
    file: str
    source: str  # the scikit-image loader and the crop, [rows, cols]
    licence: str


#: name -> Photo; the first is the one the demo's figures show.
PHOTOS: dict[str, Photo] = {photo.name: photo for photo in (
    Photo("chelsea", "chelsea.png", "skimage.data.chelsea()[64:240, 104:344]", "CC0 (Stefan van der Walt)"),
    Photo("coffee", "coffee.png", "skimage.data.coffee()[180:340, 300:524]", "CC0 (Rachel Michetti)"),
    Photo("astronaut", "astronaut.png", "skimage.data.astronaut()[40:184, 128:304]", "public domain (NASA)"),
)}


def photo_path(name: str) -> Path:
    """The file of the embedded photo `name`; a one-line TinySRError naming the choices for any other name."""
    if name not in PHOTOS:
        raise TinySRError(f"no embedded photo {name!r}: choose {', '.join(PHOTOS)}")
    return PHOTOS_DIR / PHOTOS[name].file


def load_photo(name: str) -> np.ndarray:
    """The embedded photo `name` as HWC RGB uint8, C-contiguous."""
    path = photo_path(name)
    try:
        with Image.open(path, formats=["PNG"]) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except OSError as exc:  # a damaged install: the file is missing or truncated
        raise TinySRError(f"{path}: cannot read the embedded photo ({exc})") from None
