"""Short single-thread ablations of the <=1k-parameter design (issue 6): which variant learns fastest per step.

    python benchmarks/tiny_ablation.py --arch "plain(7, 3)" [--steps 4000] [--scale 2] [--batch 16] [--lr 2e-3]

Each run trains one Y-only, bicubic-anchored net for `--steps` Adam steps (cosine to 0, batch 16 of 48x48 LR
patches) on T91 + BSD200 minus 10 held-out images (`tinysr.data.split`, always seed 0, whatever `--seed`) and
prints the held-out mean PSNR (`standard` protocol, the same `tinysr.train.loop.validate` as `tinysr train`) every
`--eval-every` steps, as JSON lines. Test sets are never read. The loss is L1 on luma (`--loss y`), on RGB
(`--loss rgb`), the squared luma error (`--loss mse`) or the mean over patches of its log (`--loss logmse`, the
batch's mean PSNR).

Fine-tuning experiments: `--init` starts from weights (a bundled name, run folder, weights file, or a `--save`d
.pt); `--revive` first re-initialises the hidden units active on < `--revive-threshold` of the pixels of 40
training images (outgoing weights zeroed, so the output is unchanged at step 0; the library's version is
`tinysr.train.revive`); `--teacher M --distill W` adds W x the same loss against model M's luma (distillation);
`--revive-every N --final-mse F` mirror the library's training options; `--ema D` validates a weight average;
`--zoom 0.9,0.8,0.7,0.6` adds shrunk copies of the training images (FSRCNN's scale augmentation; the held-out images
stay as they are); `--loss-crop N` leaves N LR pixels per patch side out of the loss.
E.g. ``--arch "tiny(n_feats=7, n_layers=3)" --init tiny-1k-x2 --revive --lr 1e-3 --steps 8000 --save a.pt``.

Architectures (`--arch`, a Python expression over these constructors):
* ``plain(feats, layers, k1=5, tail=3, act="relu", lin=0, dil=1, mid=None)``: the tiny family's plan with plain
  convs (= a `tinysr.models.tiny` net with expand 1); ``lin=k`` adds a linear k x k conv from the input to the
  pre-shuffle output (an ablation of a learned linear path next to the anchor); ``dil`` dilates the hidden 3x3
  convs; ``mid`` makes the hidden convs ``mid`` wide (first conv ``feats``); ``act`` may also be "lrelu" (0.1);
* ``tiny(**TinyConfig fields)``: the library's `TinySR`, e.g. ``tiny(n_feats=7, n_layers=3, expand=4)``;
* ``esr(D, S, C, act="tanh", anchor=False)``: an edge-SR eSR-CNN-style head (Michelini et al. 2022, as described
  in their paper: 5x5 conv to D, 3x3 to S, 3x3 to 2 C s^2, pixel shuffle, softmax-gated sum over C at HR), with an
  optional bicubic anchor. Written here for the ablation only; it is not a tinysr model.

The numbers quoted in benchmarks/RESULTS.md ("tiny") come from this script. A run of 4,000 steps takes 2-3 minutes
on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from tinysr.data.degrade import bicubic, mod_crop
from tinysr.data.folder import image_folder
from tinysr.data.sampler import PatchSampler
from tinysr.data.split import split_pairs
from tinysr.models.tiny import TinyConfig, TinySR, deployed_params
from tinysr.models.ops import bicubic_upsample, rgb_to_ycbcr, ycbcr_to_rgb
from tinysr.resize import imresize, to_uint8
from tinysr.train.loop import validate

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSR_DATA", REPO.parent / "shared" / "data")).resolve()
ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "prelu": nn.PReLU, "lrelu": lambda: nn.LeakyReLU(0.1)}


class Plain(nn.Module):
    """Y in 0..1 -> Y at scale x: 5x5 conv, (layers - 2) 3x3 convs, tail conv to s^2, shuffle, + bicubic."""

    def __init__(self, scale: int, feats: int, layers: int, *, k1: int = 5, tail: int = 3, act: str = "relu",
                 lin: int = 0, dil: int = 1, mid: int | None = None) -> None:
        super().__init__()
        convs = [nn.Conv2d(1, feats, k1, padding=k1 // 2), ACTS[act]()]
        width = feats
        for _ in range(layers - 2):
            convs += [nn.Conv2d(width, mid or feats, 3, padding=dil, dilation=dil), ACTS[act]()]
            width = mid or feats
        self.body, self.last = nn.Sequential(*convs), nn.Conv2d(width, scale * scale, tail, padding=tail // 2)
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


@torch.no_grad()
def revive_dead_units(net: nn.Module, pairs, scale: int, threshold: float = 0.01) -> None:
    """Units of a hidden ReLU layer active on < `threshold` of the LR pixels of 40 training images get fresh
    incoming weights (kaiming, bias 0.05) and zero outgoing weights, so the function is unchanged at the start."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    rates = [torch.zeros(c.out_channels) for c in convs[:-1]]
    for lr in list(pairs.lr)[:40]:
        h = rgb_to_ycbcr(torch.from_numpy(np.array(lr)).permute(2, 0, 1)[None].float())[:, :1] / 255.0
        for i, conv in enumerate(convs[:-1]):
            h = torch.relu(conv(h))
            rates[i] += (h > 0).float().mean(dim=(0, 2, 3)) / 40
    for i, rate in enumerate(rates):
        dead = (rate < threshold).nonzero().flatten()
        print(json.dumps({"layer": i, "active": [round(float(r), 3) for r in rate], "revived": dead.tolist()}))
        for d in dead.tolist():
            fresh = torch.empty_like(convs[i].weight[d:d + 1])
            nn.init.kaiming_normal_(fresh, nonlinearity="relu")
            convs[i].weight[d] = fresh[0]
            convs[i].bias[d] = 0.05
            convs[i + 1].weight[:, d] = 0.0


class _AsTiny(nn.Module):
    """A `Plain` net seen through `tinysr.train.revive`'s interface (convs, acts, a Y-only tiny config)."""

    def __init__(self, net: Plain) -> None:
        super().__init__()
        self.convs = nn.ModuleList([m for m in net.body if isinstance(m, nn.Conv2d)] + [net.last])
        self.acts = nn.ModuleList([m for m in net.body if not isinstance(m, nn.Conv2d)])
        self.config = TinyConfig(n_layers=len(self.convs))


def revive_plain(net: nn.Module, optimizer, probe) -> None:
    from tinysr.train import revive

    revive.revive_dead_units(net.net if isinstance(net, LibraryTiny) else _AsTiny(net), optimizer, probe)


def log_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean over patches of log10 of each patch's MSE: the mean PSNR of the batch, negated and divided by 10."""
    return torch.log10(((sr - hr) ** 2).mean(dim=(1, 2, 3)) + 1e-10).mean()


def crop_border(images: list[torch.Tensor], border: int) -> list[torch.Tensor]:
    """Each NCHW tensor without `border` pixels at each side (`--loss-crop`; 0: unchanged)."""
    return [t[..., border:-border, border:-border] for t in images] if border else images


def zoomed(pairs, factors: list[float]):
    """`pairs` plus each HR image shrunk by each factor (MATLAB bicubic, antialiased), its LR the bicubic of that.
    (`tinysr.data.degrade.shrink_hr` takes integer factors only, for the study's Table I.)"""
    names, hrs, lrs = list(pairs.names), list(pairs.hr), list(pairs.lr)
    for factor in factors:
        for name, hr in zip(pairs.names, pairs.hr):
            small = mod_crop(to_uint8(imresize(hr.astype(np.float64), factor)), pairs.scale)
            names.append(f"{name}@{factor}")
            hrs.append(np.ascontiguousarray(small))
            lrs.append(bicubic(small, pairs.scale))
    return dataclasses.replace(pairs, names=tuple(names), hr=hrs, lr=lrs)


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
    parser.add_argument("--loss", choices=("y", "rgb", "mse", "logmse"), default="y")
    parser.add_argument("--init", help="start from these weights (anything `tinysr upscale --model` takes; a tiny "
                        "net of the same plan)")
    parser.add_argument("--teacher", help="distil from this model (anything `--model` takes): the loss adds "
                        "--distill x the same loss against the teacher's Y")
    parser.add_argument("--distill", type=float, default=1.0)
    parser.add_argument("--revive-threshold", type=float, default=0.01,
                        help="--revive: units active on less than this share of probe pixels count as dead")
    parser.add_argument("--revive-every", type=int, default=0,
                        help="as `tinysr train --revive-every`: revive dead ReLU units every N steps, up to 3/4 of "
                        "the run (tinysr.train.revive, whose probe and rule it uses)")
    parser.add_argument("--final-mse", type=float, default=0.0,
                        help="as `--final-loss mse-y --final-fraction F`: the last F of the steps on squared error")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="validate an exponential moving average of the weights with this decay (0: off)")
    parser.add_argument("--save", help="write the net's final state_dict here (.pt), for a later --init")
    parser.add_argument("--revive", action="store_true", help="re-initialise hidden units that never fire on the "
                        "training images (after --init), their outgoing weights zeroed: the output is unchanged")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss-crop", type=int, default=0,
                        help="leave this many LR pixels (x scale HR pixels) at each patch side out of the luma loss: "
                        "there the convs see zero padding and the anchor the patch's own edge, not the image")
    parser.add_argument("--zoom", default="",
                        help="scale augmentation (FSRCNN's): add each training image shrunk by these factors, e.g. "
                        "0.9,0.8,0.7,0.6 (MATLAB bicubic; LR made from each shrunk HR by the same degradation)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    net, params = build(args.arch, args.scale)
    if args.init:
        from tinysr.infer.load import load_network

        state = (torch.load(args.init, weights_only=True) if args.init.endswith(".pt")
                 else load_network(args.init, scale=args.scale)[0].state_dict())
        (net.net if isinstance(net, LibraryTiny) else net).load_state_dict(state)
    teacher = None
    if args.teacher:
        from tinysr.train.losses import predict_luma
        from tinysr.infer.load import load_network

        teacher_net = load_network(args.teacher, scale=args.scale)[0].eval()
        teacher = lambda lr: predict_luma(teacher_net, lr) / 255.0  # noqa: E731
    model = OnRGB(net, args.scale)
    pairs = load_pairs(concat(image_folder(DATA / "T91"), image_folder(DATA / "BSD200"), name="T91+BSD200"),
                       scale=args.scale, progress=False)
    train, val = split_pairs(pairs, 10, seed=0)  # the same held-out images whatever --seed
    if args.zoom:
        train = zoomed(train, [float(f) for f in args.zoom.split(",")])
    if args.revive:
        revive_dead_units(net.net if isinstance(net, LibraryTiny) else net, train, args.scale, args.revive_threshold)
    sampler = PatchSampler(train, scale=args.scale, patch=args.patch, batch_size=args.batch,
                           generator=np.random.default_rng(args.seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * t / args.steps)))
    began = time.monotonic()
    if args.init:
        start = validate(model, val, protocol="standard")[0]
        print(json.dumps({"arch": args.arch, "step": 0, "val_psnr": round(start, 3)}), flush=True)
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema)) if args.ema else None
    probe = None
    if args.revive_every:
        from tinysr.train import revive

        probe = revive.probe_batch(train)
    for step in range(1, args.steps + 1):
        lr, hr = sampler.next_batch()
        loss_name = "mse" if step > args.steps * (1 - args.final_mse) else args.loss
        if loss_name in ("y", "mse", "logmse"):
            pointwise = {"y": F.l1_loss, "mse": F.mse_loss, "logmse": log_mse}[loss_name]
            targets = [rgb_to_ycbcr(hr)[:, :1] / 255.0]
            if teacher is not None:
                with torch.no_grad():
                    targets.append(teacher(lr))
            sr, *targets = crop_border([net(rgb_to_ycbcr(lr)[:, :1] / 255.0), *targets], args.loss_crop * args.scale)
            loss = pointwise(sr, targets[0])
            if teacher is not None:
                loss = loss + args.distill * pointwise(sr, targets[1])
        else:
            loss = F.l1_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cosine.step()
        if probe is not None and step % args.revive_every == 0 and step <= 0.75 * args.steps:
            revive_plain(net, optimizer, probe)
        if ema is not None:
            ema.update_parameters(model)
        if step % args.eval_every == 0 or step == args.steps:
            psnr, _ = validate(ema.module if ema is not None else model, val, protocol="standard")
            print(json.dumps({"arch": args.arch, "scale": args.scale, "params": params, "step": step,
                              "val_psnr": round(psnr, 3), "minutes": round((time.monotonic() - began) / 60, 1)}),
                  flush=True)
    if args.save:
        torch.save((net.net if isinstance(net, LibraryTiny) else net).state_dict(), args.save)


if __name__ == "__main__":
    main()
