"""Maintainer tool: the cases on which the browser page's JavaScript must answer as tinysr's Python does.

`src/tinysr/web/page/auto.js` ports three rules of `tinysr.delivery.auto`; this tool asks Python for its answers
and writes them, with the cases, to one fixture that the node tests read (`web/test/contracts.json`,
`web/test/auto.test.mjs`, run by `npm test` in `web/` or `node --test web/test`):
1. **JPEG quality**: the luminance table Pillow's libjpeg writes at q = 1..100, its sum, `libjpeg_table_sum` and
   `estimate_jpeg_quality`; then table sums between libjpeg's (nearest quality, ties to the higher one).
2. **The band table**: for each `--model auto` family as the page gets it (`tinysr.cli.web.families`), each page
   catalog (every bundled model, or none of the band-only nets) and each recorded scale, the model `choose_model`
   picks for lossless input, for lossy input of unknown quality and for a JPEG of each quality 1..100 (stored as
   quality ranges), or that it refuses.
3. **Files and the record rule**: small JPEG, WebP and PNG files (base64) and what `inspect_source` reads from each:
   the format, lossy or not, the JPEG quality and the `tinysr:` record taken from the comment or EXIF description
   (checked against the header's size), or why a text naming tinysr was ignored; then `checked_record` of that
   record against decoded pixels of the file's size and of that size turned a quarter, per family.

`python tools/web_contracts.py` checks the committed fixture against Python today (exit 1, naming the parts that
differ); `--write` rewrites it. Files whose case is unchanged keep their bytes, so a rewrite after a change of rule
changes only the answers. tests/test_web_contracts.py runs both the check and the node tests.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from tinysr.cli.web import families
from tinysr.delivery import auto
from tinysr.delivery.auto import (SourceInfo, checked_record, choose_model, estimate_jpeg_quality, inspect_source,
                                  libjpeg_table_sum)
from tinysr.delivery.record import EXIF_IMAGE_DESCRIPTION, Record
from tinysr.errors import TinySRError
from tinysr.infer.load import bundled_names

FIXTURE = Path(__file__).resolve().parents[1] / "web" / "test" / "contracts.json"
QUALITIES = range(1, 101)
#: Recorded scales asked of `choose_model` (None: no record, the page's default x2); 1 is "sent at full size", 8 has
#: no model and is refused.
SCALES = (None, 1, 2, 3, 4, 8)
#: The files: name -> (format, W x H, JPEG/WebP quality or None for lossless, JPEG comments (in file order), EXIF
#: tags (270 is ImageDescription, where `tinysr encode` writes a WebP's record)). Sizes are small; the record cases
#: use 16 x 16 pictures, whose x2 original is 31 or 32 pixels wide.
FileCase = tuple[str, tuple[int, int], int | None, tuple[str, ...], dict[int, str]]
DESCRIPTION = EXIF_IMAGE_DESCRIPTION  # EXIF tag 270
FILES: dict[str, FileCase] = {
    "q1.jpg": ("JPEG", (16, 16), 1, (), {}),
    "q10.jpg": ("JPEG", (16, 16), 10, (), {}),
    "q50.jpg": ("JPEG", (16, 16), 50, (), {}),
    "q75.jpg": ("JPEG", (24, 16), 75, (), {}),
    "q90.jpg": ("JPEG", (16, 24), 90, (), {}),
    "q100.jpg": ("JPEG", (16, 16), 100, (), {}),
    "lossy.webp": ("WEBP", (16, 16), 80, (), {}),
    "lossless.webp": ("WEBP", (16, 16), None, (), {}),
    "plain.png": ("PNG", (16, 16), None, (), {}),
    "record-x2.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=32x32",), {}),
    "record-x2-odd.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=31x32",), {}),
    "record-x3.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=3;size=48x46",), {}),
    "record-x4.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=4;size=64x61",), {}),
    "record-x1.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=1;size=16x16",), {}),
    "record-x2-wide.jpg": ("JPEG", (24, 16), 90, ("tinysr:scale=2;size=47x32",), {}),
    "record-x8.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=8;size=128x128",), {}),
    "record-inside-text.jpg": ("JPEG", (16, 16), 90, ("hello tinysr:scale=1;size=5x5 world",), {}),
    "record-trailing-space.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=31x32 ",), {}),
    "record-leading-zero.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=02;size=32x32",), {}),
    "record-zero-size.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=0x0",), {}),
    "record-wrong-size.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=40x40",), {}),
    "record-upper-case.jpg": ("JPEG", (16, 16), 90, ("TINYSR:scale=2;size=32x32",), {}),
    "record-no-size.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2",), {}),
    "record-latin1.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=32x32\u00e9",), {}),
    "record-control-chars.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=32x32\n\x01\x7f",), {}),
    "record-long-text.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=2;size=32x32 " + "and so on, " * 8,), {}),
    "comment-only.jpg": ("JPEG", (16, 16), 90, ("made with care",), {}),
    "record-x2.webp": ("WEBP", (16, 16), 80, (), {DESCRIPTION: "tinysr:scale=2;size=32x32"}),
    "record-x4-lossless.webp": ("WEBP", (16, 16), None, (), {DESCRIPTION: "tinysr:scale=4;size=61x64"}),
    "record-x3-tall.webp": ("WEBP", (16, 24), 80, (), {DESCRIPTION: "tinysr:scale=3;size=48x70"}),
    "record-wrong-size.webp": ("WEBP", (16, 16), 80, (), {DESCRIPTION: "tinysr:scale=2;size=40x40"}),
    "record-inside-text.webp": ("WEBP", (16, 16), 80, (), {DESCRIPTION: "sent by tinysr:scale=2;size=32x32 today"}),
    "record-in-artist.webp": ("WEBP", (16, 16), 80, (), {0x013B: "tinysr:scale=2;size=32x32"}),
    "record-exif-only.jpg": ("JPEG", (16, 16), 90, (), {DESCRIPTION: "tinysr:scale=2;size=32x32"}),
    "record-two-comments.jpg": ("JPEG", (16, 16), 90, ("tinysr:scale=4;size=64x64", "tinysr:scale=2;size=32x32"), {}),
    "record-exif.png": ("PNG", (16, 16), None, (), {DESCRIPTION: "tinysr:scale=2;size=32x32"}),
}


# ---------------------------------------------------------------------------------------------------- 1. quality


def libjpeg_luma_table(quality: int) -> list[int]:
    """Table 0 of a JPEG that Pillow's libjpeg writes at `quality` (in the order Pillow lists it)."""
    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, "JPEG", quality=quality)
    with Image.open(out) as im:
        return list(im.quantization[0])


def quality_cases() -> dict:
    """Per quality: libjpeg's table, its sum, `libjpeg_table_sum` and the estimate; then sums around each midpoint
    between neighbouring qualities' sums (where the nearest quality changes, ties going to the higher one)."""
    tables = []
    for q in QUALITIES:
        table = libjpeg_luma_table(q)
        tables.append({"quality": q, "table": table, "sum": sum(table), "libjpeg_sum": libjpeg_table_sum(q),
                       "estimate": estimate_jpeg_quality({0: table})})
    sums = {64, 64 * 255, 0, 64 * 255 + 1000}
    for q in range(1, 100):
        low, high = sorted((libjpeg_table_sum(q), libjpeg_table_sum(q + 1)))
        sums.update(s for s in range((low + high) // 2 - 1, (low + high + 1) // 2 + 2) if s >= 0)
    return {"tables": tables,
            "sums": [{"sum": s, "estimate": estimate_jpeg_quality({0: [s]})} for s in sorted(sums)]}


# ---------------------------------------------------------------------------------------------------- 2. bands


def catalogs() -> dict[str, list[str]]:
    """The page's model sets: every bundled model, and the same without the nets only a band names."""
    every = bundled_names()
    in_models = {name for f in auto.AUTO_FAMILIES.values() for pair in f.models.values() for name in pair if name}
    band_only = {name for f in auto.AUTO_FAMILIES.values() for bands in f.bands.values() for _, name in bands
                 } - in_models
    return {"bundled": every, "no-band-nets": [name for name in every if name not in band_only]}


def _choice(info: SourceInfo, family: str) -> str | None:
    """`choose_model`'s answer, or None where it refuses (a recorded scale without a model)."""
    try:
        return choose_model(info, family=family)
    except TinySRError:
        return None


def _ranges(models: list[str | None]) -> list[list]:
    """[model for q = 1..100] as [[first q, last q, model], ...]."""
    ranges: list[list] = []
    for q, model in zip(QUALITIES, models):
        if ranges and ranges[-1][2] == model:
            ranges[-1][1] = q
        else:
            ranges.append([q, q, model])
    return ranges


def choice_cases() -> list[dict]:
    """Per family, catalog and recorded scale: the model for lossless, lossy-unknown and JPEG q = 1..100 input."""
    cases = []
    for catalog, names in catalogs().items():
        with mock.patch.object(auto, "bundled_names", lambda names=names: list(names)):
            for family in auto.AUTO_FAMILIES:
                for scale in SCALES:
                    record = None if scale is None else Record(scale, 16 * scale, 16 * scale)
                    cases.append({
                        "family": family, "catalog": catalog, "scale": scale,
                        "lossless": _choice(_source("PNG", False, None, record), family),
                        "lossy": _choice(_source("WEBP", True, None, record), family),
                        "jpeg": _ranges([_choice(_source("JPEG", True, q, record), family) for q in QUALITIES])})
    return cases


def _source(fmt: str, lossy: bool, quality: int | None, record: Record | None) -> SourceInfo:
    return SourceInfo(path=Path(f"x.{fmt.lower()}"), format=fmt, lossy=lossy, quality=quality, record=record)


# ---------------------------------------------------------------------------------------------------- 3. files


def case_dict(name: str) -> dict:
    fmt, size, quality, comments, exif = FILES[name]
    return {"format": fmt, "size": list(size), "quality": quality, "comments": list(comments),
            "exif": {str(tag): text for tag, text in exif.items()}}


def make_file(name: str) -> bytes:
    """The bytes of file `name`: a seeded noise picture saved by Pillow as its case says. Pillow writes one JPEG
    comment, the last; the ones before it go in as COM segments right after SOI, in order."""
    fmt, (width, height), quality, comments, tags = FILES[name]
    rng = np.random.default_rng(sum(name.encode()))
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    options: dict = {"quality": quality} if quality is not None else {"lossless": True} if fmt == "WEBP" else {}
    if comments:
        options["comment"] = comments[-1].encode("latin-1")
    if tags:
        exif = Image.Exif()
        for tag, text in tags.items():
            exif[tag] = text
        options["exif"] = exif.tobytes()
    out = io.BytesIO()
    image.save(out, fmt, **options)
    data = out.getvalue()
    for text in reversed(comments[:-1]):
        payload = text.encode("latin-1")
        data = data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]
    return data


def python_reads(name: str, data: bytes) -> tuple[SourceInfo, dict]:
    """What `inspect_source` reads from the file (the record checked against the header's size), and it as JSON:
    format, lossy, JPEG quality, record (or None), and why a text naming tinysr was ignored (or None), word for
    word: the page shows the warning the CLI prints."""
    with tempfile.TemporaryDirectory(prefix="tinysr-contracts-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        info = inspect_source(path)
    return info, {"format": info.format, "lossy": info.lossy, "quality": info.quality,
                  "record": _record_json(info.record), "ignored": info.ignored}


def python_checks(info: SourceInfo, size: tuple[int, int]) -> list[dict]:
    """`checked_record` of a file's record against decoded pixels of its own size and of the size turned a quarter
    (as an EXIF orientation turns them), in each family: the record kept, or dropped and why."""
    if info.record is None:
        return []
    sizes = dict.fromkeys([size, size[::-1]])
    checks = []
    for (width, height), family in ((s, family) for s in sizes for family in auto.AUTO_FAMILIES):
        checked = checked_record(info, width=width, height=height, family=family)
        checks.append({"size": [width, height], "family": family, "record": _record_json(checked.record),
                       "ignored": checked.ignored})
    return checks


def _record_json(record: Record | None) -> dict | None:
    return None if record is None else {"scale": record.scale, "width": record.width, "height": record.height}


def file_cases(stored: list[dict]) -> list[dict]:
    """Every file of `FILES` with Python's reading of it; a stored file whose case is unchanged keeps its bytes."""
    kept = {entry["name"]: entry for entry in stored}
    cases = []
    for name in FILES:
        old = kept.get(name)
        same = old is not None and old["case"] == case_dict(name)
        data = base64.b64decode(old["bytes"]) if same else make_file(name)
        info, reads = python_reads(name, data)
        cases.append({"name": name, "case": case_dict(name), "bytes": base64.b64encode(data).decode("ascii"),
                      "python": reads, "decoded": python_checks(info, FILES[name][1])})
    return cases


# ---------------------------------------------------------------------------------------------------- the fixture


def build(stored: dict | None = None) -> dict:
    """The whole fixture, as Python answers today (file bytes reused from `stored` where their case is unchanged)."""
    return {
        "about": "Written by tools/web_contracts.py from tinysr's Python; do not edit: run it with --write.",
        "families": families(),
        "catalogs": catalogs(),
        "quality": quality_cases(),
        "choices": choice_cases(),
        "files": file_cases((stored or {}).get("files", [])),
    }


def dumps(value, depth: int = 0) -> str:
    """JSON with one line per entry of the top lists (reviewable diffs), compact below."""
    pad = " " * (depth + 1)
    if isinstance(value, dict) and depth < 2:
        items = [f"{pad}{json.dumps(key)}: {dumps(item, depth + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list) and depth < 3 and value and isinstance(value[0], dict):
        return "[\n" + ",\n".join(pad + json.dumps(item) for item in value) + "\n" + " " * depth + "]"
    return json.dumps(value)


def differences(stored: dict) -> list[str]:
    """The parts of `stored` that differ from what Python answers today (file cases by name); [] if none."""
    fresh = json.loads(dumps(build(stored)))
    out = [key for key in fresh.keys() | stored.keys() if key != "files" and fresh.get(key) != stored.get(key)]
    old_files = {entry["name"]: entry for entry in stored.get("files", [])}
    out += [f"files/{entry['name']}" for entry in fresh["files"] if old_files.get(entry["name"]) != entry]
    out += [f"files/{name} (no longer a case)" for name in old_files.keys() - set(FILES)]
    return sorted(out)


def read_fixture(path: Path = FIXTURE) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {FIXTURE.name} from Python's answers")
    args = parser.parse_args(argv)
    stored = read_fixture()
    if args.write:
        FIXTURE.write_text(dumps(build(stored)) + "\n")
        print(f"wrote {FIXTURE}")
        return 0
    changed = differences(stored)
    if changed:
        print(f"{FIXTURE} differs from Python in: {', '.join(changed)}; rewrite it with --write", file=sys.stderr)
        return 1
    print(f"{FIXTURE} matches Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
