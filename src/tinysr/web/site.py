"""The static site: the page (`page/`) plus one JSON per model and `models/index.json`, for any static host.

Layout of a built site:
    index.html, app.js, tinysr.js (the public API: the npm package's entry), auto.js, engine.js, image_io.js,
    upscaler.js, worker.js, style.css, wasm_engine.js, kernels.wasm (built from web/kernels.ts)   (copied from `page/`)
    models/index.json      {"models": [{"name", "file", "scale", "params", "set5_psnr"}], "families": [{"name",
                           "budget", "models": {scale: [clean, lossy]}, "bands": {scale: [[lowest, name]]}}]}:
                           the models in the page's menu order, and `--model auto`'s families (page/auto.js)
    models/<name>.json     one model (`tinysr.web.model_file`)
    tinysr-site.json       the mark that tinysr built this folder (`MARKER`)
Every path is relative, so the folder works under any URL prefix; nothing is loaded from elsewhere.

A build never replaces what tinysr did not write: it goes into a new or empty folder, or with `force` into a folder
that holds `MARKER` (a site tinysr built), never into the page folder itself; each file is written atomically (the
temporary files of a killed build are removed by the next), and an OSError (a read-only folder, a full disk) is one
line naming the folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinysr.atomic import atomic_write_bytes, remove_stale_temps
from tinysr.errors import TinySRError
from tinysr.paths import refuse_overlap

PAGE_DIR = Path(__file__).resolve().parent / "page"
PAGE_FILES = ("index.html", "style.css", "app.js", "tinysr.js", "auto.js", "engine.js", "image_io.js", "upscaler.js",
              "worker.js", "wasm_engine.js", "kernels.wasm")
#: The file in a built site that says tinysr built it: `force` writes over a non-empty folder only when it is there.
MARKER = "tinysr-site.json"


def index_entry(model: Mapping[str, Any], *, set5_psnr: float | None) -> dict[str, Any]:
    """The menu row of a model JSON."""
    return {"name": model["name"], "file": f"{model['name']}.json", "scale": model["scale"],
            "params": model["params"], "set5_psnr": set5_psnr}


def check_site_folder(out: str | Path, *, force: bool) -> None:
    """One-line TinySRError, before anything is written, unless `out` may take a site (see the module docstring)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TinySRError(f"{out}: exists and is not a folder")
    refuse_overlap(source=PAGE_DIR, destination=out, source_option="the page folder", destination_option="--build")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise TinySRError(f"{out} exists and is not empty (--force writes over it)")
        if not (out / MARKER).is_file():
            raise TinySRError(f"{out}: not a site tinysr built (no {MARKER} inside); --force writes only over one: "
                              "choose a new or empty folder")


def build_site(out: str | Path, models: Sequence[Mapping[str, Any]], *, psnr: Mapping[str, float] | None = None,
               families: Sequence[Mapping[str, Any]] = (), force: bool = False) -> Path:
    """Write the page and `models` (model JSONs, menu order) into the folder `out`; returns it.

    psnr: Set5 PSNR per model name, shown in the menu. families: `AutoFamily.to_dict()`s; the page offers one when
    it has every model the family names outright. An existing non-empty `out` is refused unless `force` and it is
    a site tinysr built (then the page files and `models/` are rewritten; other files there stay).
    """
    out = Path(out)
    check_site_folder(out, force=force)
    entries = [index_entry(model, set5_psnr=(psnr or {}).get(model["name"])) for model in models]
    files = {MARKER: json.dumps({"written_by": "tinysr web --build"}).encode()}  # first: a killed build is ours
    files |= {name: (PAGE_DIR / name).read_bytes() for name in PAGE_FILES}
    files |= {f"models/{model['name']}.json": json.dumps(model).encode() for model in models}
    files["models/index.json"] = json.dumps({"models": entries, "families": list(families)}, indent=1).encode()
    try:
        (out / "models").mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            remove_stale_temps(out / name)  # what a killed build left
            atomic_write_bytes(out / name, data)
    except OSError as exc:
        raise TinySRError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
