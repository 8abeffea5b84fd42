"""The static site: the page (`page/`) plus one JSON per model and `models/index.json`, for any static host.

Layout of a built site:
    index.html, app.js, auto.js, engine.js, image_io.js, upscaler.js, worker.js, style.css,
    wasm_engine.js, kernels.wasm (built from web/kernels.ts)                         (copied from `page/`)
    models/index.json      {"models": [{"name", "file", "scale", "params", "set5_psnr"}], "families": [{"name",
                           "budget", "models": {scale: [clean, lossy]}, "bands": {scale: [[lowest, name]]}}]}:
                           the models in the page's menu order, and `--model auto`'s families (page/auto.js)
    models/<name>.json     one model (`tinysr.web.model_file`)
Every path is relative, so the folder works under any URL prefix; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinysr.errors import TinySRError

PAGE_DIR = Path(__file__).resolve().parent / "page"
PAGE_FILES = ("index.html", "style.css", "app.js", "auto.js", "engine.js", "image_io.js", "upscaler.js",
              "worker.js", "wasm_engine.js", "kernels.wasm")


def index_entry(model: Mapping[str, Any], *, set5_psnr: float | None) -> dict[str, Any]:
    """The menu row of a model JSON."""
    return {"name": model["name"], "file": f"{model['name']}.json", "scale": model["scale"],
            "params": model["params"], "set5_psnr": set5_psnr}


def build_site(out: str | Path, models: Sequence[Mapping[str, Any]], *, psnr: Mapping[str, float] | None = None,
               families: Sequence[Mapping[str, Any]] = (), force: bool = False) -> Path:
    """Write the page and `models` (model JSONs, menu order) into the folder `out`; returns it.

    psnr: Set5 PSNR per model name, shown in the menu. families: `AutoFamily.to_dict()`s; the page offers one when
    it has every model the family names outright. An existing non-empty `out` is refused unless `force` (then the
    page files and `models/` are rewritten; other files there stay).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise TinySRError(f"{out} exists and is not empty (--force writes over it)")
    (out / "models").mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(PAGE_DIR / name, out / name)
    entries = []
    for model in models:
        (out / "models" / f"{model['name']}.json").write_text(json.dumps(model), encoding="utf-8")
        entries.append(index_entry(model, set5_psnr=(psnr or {}).get(model["name"])))
    index = {"models": entries, "families": list(families)}
    (out / "models" / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    return out
