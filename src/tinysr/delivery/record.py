"""The sender's record: how `tinysr encode` tells the receiver the scale it downscaled by and the original size.

The record is one line of text, ``tinysr:scale=2;size=481x321`` (size is W x H of the original, before any
padding), stored where ordinary viewers ignore it:
- JPEG: a COM (comment) segment (Pillow ``save(..., comment=...)``; read back as ``im.info["comment"]``);
- WebP and AVIF: EXIF ImageDescription (tag 0x010E) (Pillow ``save(..., exif=...)``; read back with
  ``im.getexif()``).
The file stays an ordinary image: a viewer shows the small (LR) picture.

A record counts only when it can be what `tinysr encode` wrote for this very image (`check_record`):
1. it is the whole comment or description, exactly as `Record.text` writes it (no other text around it, no leading
   zeros), so that a comment that merely mentions one is not obeyed;
2. its scale is 2, 3 or 4, or 1 ("sent at full size": the pixels come back as they are);
3. its size gives the image's: ``ceil(width / scale) x ceil(height / scale)`` is the file's W x H (the sender padded
   the original to a multiple of the scale, then downscaled).
A text that names tinysr but fails a rule is ignored, with the reason, and the file is upscaled as one without a
record. page/auto.js applies the same rule in the browser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from PIL import Image

EXIF_IMAGE_DESCRIPTION = 0x010E
_RECORD = re.compile(r"tinysr:scale=([0-9]+);size=([0-9]+)x([0-9]+)")
#: What marks a text as meant for tinysr: one that holds this but is no valid record is ignored with a warning.
MARK = "tinysr:"
#: The scales a record may state: 1 (sent at full size) and the factors tinysr's nets upscale by.
RECORD_SCALES = (1, 2, 3, 4)


@dataclass(frozen=True)
class Record:
    """What the sender did: downscaled by `scale` an original of `width` x `height` pixels."""

    scale: int
    width: int
    height: int

    def text(self) -> str:
        return f"tinysr:scale={self.scale};size={self.width}x{self.height}"

    def lr_size(self) -> tuple[int, int]:
        """(W, H) of the image the sender wrote: the original padded to a multiple of the scale, downscaled."""
        return -(-self.width // self.scale), -(-self.height // self.scale)


def _as_text(text: object) -> str:
    if isinstance(text, bytes):
        return text.decode("latin-1")
    return "" if text is None else str(text)


def parse_record(text: str | bytes | None) -> Record | None:
    """The record that `text` (a comment or an EXIF description) is, exactly (rule 1), or None."""
    text = _as_text(text)
    match = _RECORD.fullmatch(text)
    if match is None:
        return None
    record = Record(*(int(g) for g in match.groups()))
    return record if record.text() == text else None


def check_record(record: Record, *, width: int, height: int) -> str | None:
    """Why `record` cannot be what `tinysr encode` wrote for a `width` x `height` image (rules 2 and 3), or None."""
    if record.scale not in RECORD_SCALES:
        return f"scale x{record.scale} is not one of {', '.join(f'x{s}' for s in RECORD_SCALES)}"
    lr_width, lr_height = record.lr_size()
    if (lr_width, lr_height) != (width, height):
        return (f"an original of {record.width}x{record.height} sent at x{record.scale} is {lr_width}x{lr_height}, "
                f"not this {width}x{height} image")
    return None


def find_record(texts: list[str | bytes | None], *, width: int, height: int) -> tuple[Record | None, str | None]:
    """(record, None) for the first text that names tinysr when it is a valid record for a `width` x `height`
    image; (None, why it is ignored) when it is not; (None, None) when no text names tinysr."""
    for text in map(_as_text, texts):
        if MARK not in text:
            continue
        record = parse_record(text)
        if record is None:
            shown = text if len(text) <= 60 else text[:57] + "..."
            return None, f"record ignored ({json.dumps(shown, ensure_ascii=False)} is not exactly a tinysr record)"
        problem = check_record(record, width=width, height=height)
        return (record, None) if problem is None else (None, f"record ignored ({record.text()}: {problem})")
    return None, None


#: Pillow formats whose COM segment holds a record, and those whose EXIF ImageDescription does (what `tinysr encode`
#: writes, and what page/auto.js reads); a PNG's text chunk named "comment" is no record.
COMMENT_FORMATS = ("JPEG", "MPO")
EXIF_FORMATS = ("JPEG", "MPO", "WEBP", "AVIF")


def read_record(im: Image.Image) -> tuple[Record | None, str | None]:
    """`find_record` on an opened image file: its JPEG comment, then its EXIF ImageDescription (as text: an ASCII
    entry, the type the EXIF standard gives it), against its size."""
    comment = im.info.get("comment") if im.format in COMMENT_FORMATS else None
    description = im.getexif().get(EXIF_IMAGE_DESCRIPTION) if im.format in EXIF_FORMATS else None
    texts = [comment, description if isinstance(description, str) else None]
    return find_record(texts, width=im.width, height=im.height)


def save_options(fmt: str, record: Record) -> dict:
    """Pillow `save` keyword arguments that store `record` in a file of Pillow format `fmt`."""
    if fmt == "JPEG":
        return {"comment": record.text().encode("ascii")}
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = record.text()
    return {"exif": exif.tobytes()}
