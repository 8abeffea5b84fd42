"""`tinysr encode`: the sender's half of `tinysr upscale --model auto`.

    tinysr encode IMAGE --budget BYTES -o OUT [--codec jpeg|webp] [--receiver auto|auto-5k] [--force]

Tries scales 1-4, each at the highest codec quality that fits the budget, measures what the receiver will see, and
writes the best as an ordinary JPEG/WebP that records its scale and the original size (`tinysr.delivery.encode`).
Prints one line per candidate and the choice; a budget nothing meets is a one-line error, and nothing is written.
"""

from __future__ import annotations

import argparse

from tinysr.delivery.encode import BORDER, encode_file
from tinysr.errors import one_line


def run(args: argparse.Namespace) -> int:
    best, found = encode_file(args.image, args.output, budget=args.budget, codec=args.codec, force=args.force,
                              receiver=args.receiver)
    for c in found:
        print(("* " if c is best else "  ") + c.describe())
    print(one_line(f"wrote {args.output}: {len(best.data)} of {args.budget} bytes, x{best.scale} q{best.quality}, "
                   f"receiver PSNR-Y {best.psnr:.2f} dB (standard protocol, {BORDER}-pixel border) with {best.model}"))
    return 0
