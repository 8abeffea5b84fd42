"""`tinysr eval`: PSNR/SSIM of an upscaler on folders of HR images, under a named protocol and degradation
(or on LR files made elsewhere, paired by file stem).

`--model auto` (or `auto-5k`) measures what `tinysr upscale --model auto` would do: per image, the model the family
picks for that LR file. With --lr-data the file itself is inspected (`tinysr.delivery.auto.inspect_source`); with a
degradation, its last codec stage says what the receiver would get: a JPEG of the quality that stage drew for the
image (the receiver reads it back exactly from Pillow's tables), a WebP or AVIF of unknown quality, or, without a
codec stage, a lossless file. Each row names its model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinysr.data.degrade import Pipeline, parse_degradation
from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import Chooser, evaluate
from tinysr.delivery.auto import AUTO_FAMILIES, SourceInfo, choose_model, coded_source, inspect_source
from tinysr.infer.load import resolve_upscaler
from tinysr.metrics import PROTOCOLS


def checked_size(path, img, *, scale: int):
    """`img`, or a TinySRError naming `path` when it is smaller than the scale (no LR image exists)."""
    if min(img.shape[:2]) < scale:
        raise TinySRError(f"{path}: image of size {img.shape[1]}x{img.shape[0]} is smaller than scale x{scale}")
    return img


def degraded_source(pipeline: Pipeline, name: str) -> SourceInfo:
    """What the receiver would know of image `name`'s LR under `pipeline` (seed 0, as `tinysr.evaluate`)."""
    if not pipeline.codecs:
        return SourceInfo(path=Path(f"{name}.png"), format="PNG", lossy=False)
    stage, position = pipeline.codecs[-1], len(pipeline.codecs) - 1
    return coded_source(stage.codec, stage.quality_for(seed=0, image_id=name, position=position), name=name)


def auto_chooser(args: argparse.Namespace, scale: int) -> Chooser:
    """Per image name: the model `--model FAMILY` picks for its LR, as (name, upscaler); upscalers loaded once."""
    files = {p.stem: p for p in image_folder(args.lr_data).hr_paths} if args.lr_data is not None else {}
    pipeline, loaded = parse_degradation(args.degradation), {}

    def choose(name: str):
        info = inspect_source(files[name]) if name in files else degraded_source(pipeline, name)
        model = choose_model(info, scale=scale, family=args.model)
        if model not in loaded:
            loaded[model] = resolve_upscaler(model, scale=scale, device=args.device,
                                             self_ensemble=args.self_ensemble)[0]
        return model, loaded[model]

    return choose


def run(args: argparse.Namespace) -> int:
    if args.lr_data is not None and len(args.data) != 1:
        raise TinySRError(f"--lr-data pairs its files with one --data folder, got {len(args.data)}")
    choose = None
    if args.model in AUTO_FAMILIES:
        scale = args.scale or 2
        upscaler, choose = None, auto_chooser(args, scale)
        model_desc = f"{args.model} (per image)" + (" + self-ensemble (x8)" if args.self_ensemble else "")
    else:
        upscaler, model_desc, scale = resolve_upscaler(args.model, scale=args.scale, device=args.device,
                                                       self_ensemble=args.self_ensemble)
    reports = []
    for folder in args.data:
        image_set = image_folder(folder)
        images = ((path.stem, checked_size(path, img, scale=scale))
                  for path, img in decode_all(image_set, strict=True, max_pixels=args.max_pixels))
        reports.append(evaluate(upscaler, images, scale=scale, protocol=PROTOCOLS[args.protocol],
                                dataset=image_set.name, model=model_desc, degradation=args.degradation,
                                lr_data=args.lr_data, progress=not args.json, choose=choose))
    if args.json:
        out = [r.to_dict() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        print("\n\n".join(r.to_table() for r in reports))
    return 0
