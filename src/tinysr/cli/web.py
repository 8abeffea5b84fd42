"""`tinysr web`: serve the browser page on 127.0.0.1, or write it as a static site (`--build DIR`).

The page runs the nets in the browser (`tinysr.web`); this runner only turns the nets into the page's model files:
each net is loaded as `tinysr upscale` loads it, a Y-only bicubic-anchored net as the fused kernels' arrays
(`tinysr.infer.fused.fused_net`), any other through its NumPy export (`tinysr.export.numpy_export`).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
from typing import Any

import numpy as np

from tinysr.delivery.auto import AUTO_FAMILIES
from tinysr.infer.load import bundled_names, load_network
from tinysr.pretrained import read_table
from tinysr.web import model_file
from tinysr.web.server import serve, url
from tinysr.web.site import build_site, check_site_folder


def web_model(spec: str, name: str) -> dict[str, Any]:
    """The page's model JSON of a bundled name, weights file or run folder."""
    model, _ = load_network(spec, scale=None)  # torch-free: the engine's network
    params, radius = model.n_params, model.receptive_radius()
    if model.fused is not None:
        return model_file.luma_anchor_model(model.fused, name=name, params=params, radius=radius)
    program = {"format": 1, "input": model.program.input, "output": model.program.output,
               "ops": list(model.program.ops)}
    return model_file.program_model(program, model.arrays, name=name, scale=model.scale, params=params,
                                    radius=radius)


def web_models(specs: list[str] | None = None) -> list[dict[str, Any]]:
    """Model JSONs of `specs` (None: every bundled model, in table order); a file is named by its stem."""
    specs = specs or bundled_names()
    return [web_model(spec, spec if spec in bundled_names() else spec.rstrip("/").split("/")[-1].split(".")[0])
            for spec in specs]


def set5_psnr() -> dict[str, float]:
    """Set5 PSNR of each bundled model, for the page's menu."""
    return {row.name: row.psnr["Set5"] for row in read_table() if "Set5" in row.psnr}


def families() -> list[dict[str, Any]]:
    """`--model auto`'s families, for the page (it offers those whose models it has)."""
    return [family.to_dict() for family in AUTO_FAMILIES.values()]


def run(args: argparse.Namespace) -> int:
    if args.build:
        check_site_folder(args.build, force=args.force)  # before the models are made
    models = web_models(args.model)
    if args.build:
        out = build_site(args.build, models, psnr=set5_psnr(), families=families(), force=args.force)
        print(f"wrote the page and {len(models)} models to {out}; serve it with any static server")
        return 0
    with tempfile.TemporaryDirectory(prefix="tinysr-web-") as root:
        build_site(root, models, psnr=set5_psnr(), families=families(), force=True)
        server = serve(root, port=args.port)
        print(f"tinysr web: {url(server)} (Ctrl-C stops)", flush=True)
        try:
            threading.Event().wait()  # until Ctrl-C or SIGTERM: `tinysr: interrupted`, exit 130, as every command
        finally:
            server.shutdown()
