"""Short single-thread ablations of the <=1k-parameter design (issue 6): which variant learns fastest per step.

    python benchmarks/tiny_ablation.py --arch "plain(7, 3)" [--steps 4000] [--scale 2] [--batch 16] [--lr 2e-3]

Each run trains one Y-only, bicubic-anchored net for `--steps` Adam steps (cosine to 0, batch 16 of 48x48 LR
patches) on T91 + BSD200 minus 10 held-out images (`tinysr.data.split`, seed 0) and prints the held-out mean PSNR
(`standard` protocol, the same `tinysr.train.validate` as `tinysr train`) every `--eval-every` steps, as JSON lines.
Test sets are never read. The loss is L1 on luma (`--loss y`) or on RGB (`--loss rgb`).

Architectures (`--arch`, a Python expression over these constructors):
* ``plain(feats, layers, k1=5, tail=3, act="relu", lin=0)``: the tiny family's plan with plain convs (= a
  `tinysr.models.tiny` net with expand 1); ``lin=k`` adds a linear k x k conv from the input to the pre-shuffle
  output (an ablation of a learned linear path next to the anchor);
* ``tiny(**TinyConfig fields)``: the library's `TinySR`, e.g. ``tiny(n_feats=7, n_layers=3, expand=4)``;
* ``esr(D, S, C, act="tanh", anchor=False)``: an edge-SR eSR-CNN-style head (Michelini et al. 2022, as described
  in their paper: 5x5 conv to D, 3x3 to S, 3x3 to 2 C s^2, pixel shuffle, softmax-gated sum over C at HR), with an
  optional bicubic anchor. Written here for the ablation only; it is not a tinysr model.

The numbers quoted in benchmarks/RESULTS.md ("tiny") come from this script. A run of 4,000 steps takes 2-3 minutes
on one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinysr.data.cache import concat, load_pairs
from tinysr.data.folder import image_folder
from tinysr.data.sampler import PatchSampler
from tinysr.data.split import split_pairs
from tinysr.models.tiny import TinyConfig, TinySR, deployed_params
from tinysr.models.ycbcr import bicubic_upsample, rgb_to_ycbcr, ycbcr_to_rgb
from tinysr.train import validate

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data")).resolve()
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "prelu": nn.PReLU}


class Plain(nn.Module):
    """Y in 0..1 -> Y at scale x: 5x5 conv, (layers - 2) 3x3 convs, tail conv to s^2, shuffle, + bicubic."""

    def __init__(self, scale: int, feats: int, layers: int, *, k1: int = 5, tail: int = 3, act: str = "relu",
                 lin: int = 0) -> None:
        super().__init__()
        convs = [nn.Conv2d(1, feats, k1, padding=k1 // 2), ACTS[act]()]
        for _ in range(layers - 2):
            convs += [nn.Conv2d(feats, feats, 3, padding=1), ACTS[act]()]
        self.body, self.last = nn.Sequential(*convs), nn.Conv2d(feats, scale * scale, tail, padding=tail // 2)
        self.lin = nn.Conv2d(1, scale * scale, lin, padding=lin // 2) if lin else None
        for conv in filter(None, (self.last, self.lin)):  # residual starts at zero: the net starts at bicubic
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.scale = scale

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        out = self.last(self.body(y))
        if self.lin is not None:
            out = out + self.lin(y)
        return F.pixel_shuffle(out, self.scale) + bicubic_upsample(y, self.scale)


class EdgeGate(nn.Module):
    """eSR-CNN-style: 5x5 -> D, 3x3 -> S, 3x3 -> 2 C s^2 (no bias), shuffle, sum_c value_c * softmax(match)_c."""

    def __init__(self, scale: int, d: int, s: int, c: int, *, act: str = "tanh", anchor: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, d, 5, padding=2), ACTS[act](), nn.Conv2d(d, s, 3, padding=1),
                                 ACTS[act](), nn.Conv2d(s, 2 * c * scale * scale, 3, padding=1, bias=False),
                                 nn.PixelShuffle(scale))
        if anchor:
            with torch.no_grad():
                self.net[-2].weight.mul_(0.1)
        self.scale, self.c, self.anchor = scale, c, anchor

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        f = self.net(y)
        out = (f[:, :self.c] * torch.softmax(f[:, self.c:], dim=1)).sum(1, keepdim=True)
        return out + bicubic_upsample(y, self.scale) if self.anchor else out


class LibraryTiny(nn.Module):
    """The library's `TinySR` on Y in 0..1 (its residual plus the bicubic anchor)."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.net, self.scale = TinySR(config), config.scale

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net.residual(y) + bicubic_upsample(y, self.scale)


class OnRGB(nn.Module):
    """Y net -> the RGB 0..255 model `validate` expects (Cb/Cr bicubic, as a Y-only tiny net)."""

    def __init__(self, ynet: nn.Module, scale: int) -> None:
        super().__init__()
        self.ynet, self.scale = ynet, scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = rgb_to_ycbcr(lr)
        y = self.ynet(x[:, :1] / 255.0) * 255.0
        return ycbcr_to_rgb(torch.cat([y, bicubic_upsample(x, self.scale)[:, 1:]], dim=1))


def build(arch: str, scale: int) -> tuple[nn.Module, int]:
    """The net named by the `--arch` expression, and its deployed parameter count."""
    constructors = {
        "plain": lambda *a, **k: Plain(scale, *a, **k),
        "esr": lambda *a, **k: EdgeGate(scale, *a, **k),
        "tiny": lambda **k: LibraryTiny(TinyConfig(scale=scale, **k)),
    }
    net = eval(arch, {"__builtins__": {}}, constructors)  # a command-line expression of the names above only
    if isinstance(net, LibraryTiny):
        return net, deployed_params(net.net.config)
    return net, sum(p.numel() for p in net.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--loss", choices=("y", "rgb"), default="y")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    net, params = build(args.arch, args.scale)
    model = OnRGB(net, args.scale)
    pairs = load_pairs(concat(image_folder(DATA / "T91"), image_folder(DATA / "BSD200"), name="T91+BSD200"),
                       scale=args.scale, progress=False)
    train, val = split_pairs(pairs, 10, seed=args.seed)
    sampler = PatchSampler(train, scale=args.scale, patch=args.patch, batch_size=args.batch,
                           generator=np.random.default_rng(args.seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * t / args.steps)))
    began = time.monotonic()
    for step in range(1, args.steps + 1):
        lr, hr = sampler.next_batch()
        if args.loss == "y":
            loss = F.l1_loss(net(rgb_to_ycbcr(lr)[:, :1] / 255.0), rgb_to_ycbcr(hr)[:, :1] / 255.0)
        else:
            loss = F.l1_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cosine.step()
        if step % args.eval_every == 0 or step == args.steps:
            psnr, _ = validate(model, val, protocol="standard")
            print(json.dumps({"arch": args.arch, "scale": args.scale, "params": params, "step": step,
                              "val_psnr": round(psnr, 3), "minutes": round((time.monotonic() - began) / 60, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
