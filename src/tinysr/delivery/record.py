"""The sender's record: how `tinysr encode` tells the receiver the scale it downscaled by and the original size.

The record is one line of text, ``tinysr:scale=2;size=481x321`` (size is W x H of the original, before any
padding), stored where ordinary viewers ignore it:
- JPEG: a COM (comment) segment (Pillow ``save(..., comment=...)``; read back as ``im.info["comment"]``);
- WebP and AVIF: EXIF ImageDescription (tag 0x010E) (Pillow ``save(..., exif=...)``; read back with
  ``im.getexif()``).
The file stays an ordinary image: a viewer shows the small (LR) picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image

EXIF_IMAGE_DESCRIPTION = 0x010E
_RECORD = re.compile(r"tinysr:scale=(\d+);size=(\d+)x(\d+)")


@dataclass(frozen=True)
class Record:
    """What the sender did: downscaled by `scale` an original of `width` x `height` pixels."""

    scale: int
    width: int
    height: int

    def text(self) -> str:
        return f"tinysr:scale={self.scale};size={self.width}x{self.height}"


def parse_record(text: str | bytes | None) -> Record | None:
    """The record inside `text` (a comment or an EXIF description), or None if it holds none."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    match = _RECORD.search(text or "")
    return None if match is None else Record(*(int(g) for g in match.groups()))


def read_record(im: Image.Image) -> Record | None:
    """The record of an opened image file: the JPEG comment first, then EXIF ImageDescription."""
    found = parse_record(im.info.get("comment"))
    if found is None:
        found = parse_record(im.getexif().get(EXIF_IMAGE_DESCRIPTION))
    return found


def save_options(fmt: str, record: Record) -> dict:
    """Pillow `save` keyword arguments that store `record` in a file of Pillow format `fmt`."""
    if fmt == "JPEG":
        return {"comment": record.text().encode("ascii")}
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = record.text()
    return {"exif": exif.tobytes()}
