"""`tinysr eval`: PSNR/SSIM of an upscaler on folders of HR images, under a named protocol and degradation
(or on LR files made elsewhere, paired by file stem)."""

from __future__ import annotations

import argparse
import json

from tinysr.data.folder import decode_all, image_folder
from tinysr.errors import TinySRError
from tinysr.evaluate import evaluate
from tinysr.infer.load import resolve_upscaler
from tinysr.metrics import PROTOCOLS


def checked_size(path, img, *, scale: int):
    """`img`, or a TinySRError naming `path` when it is smaller than the scale (no LR image exists)."""
    if min(img.shape[:2]) < scale:
        raise TinySRError(f"{path}: image of size {img.shape[1]}x{img.shape[0]} is smaller than scale x{scale}")
    return img


def run(args: argparse.Namespace) -> int:
    if args.lr_data is not None and len(args.data) != 1:
        raise TinySRError(f"--lr-data pairs its files with one --data folder, got {len(args.data)}")
    upscaler, model_desc, scale = resolve_upscaler(args.model, scale=args.scale, device=args.device,
                                                   self_ensemble=args.self_ensemble)
    reports = []
    for folder in args.data:
        image_set = image_folder(folder)
        images = ((path.stem, checked_size(path, img, scale=scale))
                  for path, img in decode_all(image_set, strict=True, max_pixels=args.max_pixels))
        reports.append(evaluate(upscaler, images, scale=scale, protocol=PROTOCOLS[args.protocol],
                                dataset=image_set.name, model=model_desc, degradation=args.degradation,
                                lr_data=args.lr_data, progress=not args.json))
    if args.json:
        out = [r.to_dict() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        print("\n\n".join(r.to_table() for r in reports))
    return 0
