"""The phone form of a network: the same function written with the few ops every phone runtime has.

LiteRT, ncnn and Core ML have no MATLAB bicubic resize and no colour-space op, so the phone form rewrites them:
* RGB -> Y (MATLAB `rgb2ycbcr`'s first row) is a 1x1 conv;
* the MATLAB bicubic anchor is a symmetric pad of 2 (MATLAB's half-sample mirror) and one fixed-weight 5x5 conv
  from each colour to its scale^2 phases (`anchor_weight`, from `tinysr.resize.phase_taps`);
* Y -> RGB is folded away: for a Y-only net, `ycbcr_to_rgb([Y_up + r, Cb_up, Cr_up]) = bicubic(RGB) + gain * r`
  (`TinySR.forward`'s own identity), so the last conv writes `gain * 255 * r` to each colour's phases;
* the residual and the anchor are added at LR resolution and one depth-to-space (pixel shuffle) ends the net;
* EDSR's `res_scale` and its output mean are folded into conv weights and biases; the input mean stays an add
  (the head conv zero-pads `lr - mean`, not `lr`);
* a compact net's nearest anchor is a fixed 1x1 conv from each colour to its scale^2 phases (`nearest_weight`, 0/1
  weights, so float32-exact: each phase is its colour, unchanged), added to the last conv's output before the
  depth-to-space; its x / 255 folds into the first conv and its x 255 into the last (0..255 around the net, as
  `tinysr.families.compact.program` computes on 0..1 inside), and its PReLUs stay ops.

A phone form is a list of ops (dicts, like `tinysr.export.numpy_export`'s programs, but with the arrays inline):
    conv             in [x], weight (O, C, k, k) float32, bias (O,), pad "zeros" (k // 2, torch's) or "none",
                     act None or "relu" (fused)
    prelu            in [x], slopes (C,)
    leaky_relu       in [x], slope
    add              in [a, b]
    add_channels     in [x], value (C,): x + value per channel
    symmetric_pad    in [x], pad: MATLAB's / TF's SYMMETRIC mirror ([x1 x0 | x0 .. xn-1 | xn-1 xn-2] for pad 2)
    depth_to_space   in [x], factor: torch's `pixel_shuffle` channel order (c * f * f + i * f + j)
The input is "lr", the output the last op's "out". Layout: NCHW float32 RGB 0..255 in and out, not clamped (the
torch forward contract); an exporter to an NHWC runtime converts the layout and the depth-to-space order.
`PhoneNet` runs a phone form in torch, for tracing (pnnx, coremltools) and for tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinysr.color import RGB_TO_YCBCR, YCBCR_OFFSET, YCBCR_TO_RGB
from tinysr.errors import TinySRError
from tinysr.models import deployed
from tinysr.models.tiny import LRELU_SLOPE
from tinysr.resize import phase_taps

ANCHOR_PAD = 2  # LR pixels MATLAB bicubic upscaling reaches on each side (taps k = -2..2)
Op = dict[str, Any]


def _f32(t) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(t.detach().cpu().double() if torch.is_tensor(t) else t,
                                           dtype=np.float64).astype(np.float32))


def _conv(src: str, out: str, weight, bias, *, pad: str = "zeros", act: str | None = None) -> Op:
    return {"op": "conv", "in": [src], "out": out, "weight": _f32(weight), "bias": _f32(bias), "pad": pad,
            "act": act}


# ---------------------------------------------------------------------------------------------------- the anchor


def anchor_weight(scale: int, channels: int = 3) -> np.ndarray:
    """(channels * scale^2, channels, 5, 5) float64: MATLAB bicubic upscaling as a conv on the input padded
    symmetrically by 2; output channel c * scale^2 + py * scale + px is phase (py, px) of colour c (pixel-shuffle
    order), weight[.., ky, kx] = tap_py(ky - 2) * tap_px(kx - 2) (the separable taps of `phase_taps`)."""
    taps = np.zeros((scale, 2 * ANCHOR_PAD + 1))
    for p, phase in enumerate(phase_taps(scale)):
        for k, w in phase:
            taps[p, k + ANCHOR_PAD] = w
    phases = np.einsum("ay,bx->abyx", taps, taps).reshape(scale * scale, 1, 5, 5)
    weight = np.zeros((channels * scale * scale, channels, 5, 5))
    for c in range(channels):
        weight[c * scale * scale:(c + 1) * scale * scale, c:c + 1] = phases
    return weight


def nearest_weight(scale: int, channels: int = 3) -> np.ndarray:
    """(channels * scale^2, channels, 1, 1) float64 of 0s and 1s: nearest-neighbour upscaling as a 1x1 conv before
    a pixel shuffle; output channel c * scale^2 + k is colour c for every phase k (`repeat_channels` of the compact
    program), so after the shuffle each LR pixel fills its scale x scale block."""
    weight = np.zeros((channels * scale * scale, channels, 1, 1))
    for c in range(channels):
        weight[c * scale * scale:(c + 1) * scale * scale, c] = 1.0
    return weight


# ---------------------------------------------------------------------------------------------------- the families


def _tiny_form(model: nn.Module) -> list[Op]:
    """A collapsed tiny net with a bicubic anchor (Y-only or RGB); see the module docstring."""
    config = model.config
    if config.anchor != "bicubic":
        raise TinySRError(f"phone formats support tiny nets with a bicubic anchor, not {config.anchor!r}")
    s2, is_y = config.scale**2, config.channels == "y"
    convs = list(model.convs)
    ops: list[Op] = []
    first_weight = convs[0].weight.detach().double()
    if is_y:  # Y / 255 as a 1x1 conv; its offset must stay before the first conv's zero padding
        row = RGB_TO_YCBCR[0] / 255.0 / 255.0
        ops.append(_conv("lr", "luma", row.reshape(1, 3, 1, 1), [YCBCR_OFFSET[0] / 255.0], pad="none"))
    else:  # x / 255 folds into the first conv (zero padding commutes with a scale)
        first_weight = first_weight / 255.0
    h = "luma" if is_y else "lr"
    for i, conv in enumerate(convs[:-1]):
        weight = first_weight if i == 0 else conv.weight
        act = "relu" if config.act == "relu" else None
        ops.append(_conv(h, f"conv{i}", weight, conv.bias, act=act))
        h = f"conv{i}"
        if config.act in ("prelu", "lrelu"):
            extra = ({"op": "prelu", "slopes": _f32(model.acts[i].weight)} if config.act == "prelu"
                     else {"op": "leaky_relu", "slope": LRELU_SLOPE})
            ops.append({**extra, "in": [h], "out": f"act{i}"})
            h = f"act{i}"
    last = convs[-1]
    weight, bias = last.weight.detach().double(), last.bias.detach().double()
    if len(convs) == 1:
        weight = first_weight
    if is_y:  # r (s^2 phases) -> gain_c * 255 * r for each colour c, in pixel-shuffle order
        gain = torch.as_tensor(YCBCR_TO_RGB[:, 0] * 255.0 * 255.0, dtype=torch.float64)  # luma_gain x 255
        weight = torch.cat([g * weight for g in gain])
        bias = torch.cat([g * bias for g in gain])
    else:
        weight, bias = weight * 255.0, bias * 255.0
    ops += [_conv(h, "residual", weight, bias),
            {"op": "symmetric_pad", "in": ["lr"], "out": "lr_padded", "pad": ANCHOR_PAD},
            _conv("lr_padded", "anchor", anchor_weight(config.scale), np.zeros(3 * s2), pad="none"),
            {"op": "add", "in": ["residual", "anchor"], "out": "phases"},
            {"op": "depth_to_space", "in": ["phases"], "out": "sr", "factor": config.scale}]
    return ops


def _edsr_form(model: nn.Module) -> list[Op]:
    """EDSR, following `models/edsr.py`; res_scale folded into each block's second conv, the mean into the tail."""
    mean = model.rgb_mean.detach().double().reshape(-1)
    ops = [{"op": "add_channels", "in": ["lr"], "out": "x", "value": _f32(-mean)},
           _conv("x", "head", model.head.weight, model.head.bias)]
    features = "head"
    for i, block in enumerate(model.body):
        first, second = block.body[0], block.body[2]
        rs = float(block.res_scale)
        ops += [_conv(features, f"b{i}.a", first.weight, first.bias, act="relu"),
                _conv(f"b{i}.a", f"b{i}.c", second.weight.double() * rs, second.bias.double() * rs),
                {"op": "add", "in": [features, f"b{i}.c"], "out": f"b{i}"}]
        features = f"b{i}"
    ops += [_conv(features, "body_end", model.body_end.weight, model.body_end.bias),
            {"op": "add", "in": ["head", "body_end"], "out": "skip"}]
    features = "skip"
    for j, layer in enumerate(model.upsample):
        if isinstance(layer, nn.Conv2d):
            ops.append(_conv(features, f"up{j}", layer.weight, layer.bias))
        else:
            ops.append({"op": "depth_to_space", "in": [f"up{j - 1}"], "out": f"up{j}", "factor": layer.upscale_factor})
        features = f"up{j}"
    return ops + [_conv(features, "sr", model.tail.weight, model.tail.bias.double() + mean)]


def _compact_form(model: nn.Module) -> list[Op]:
    """SRVGGNetCompact (`models/compact.py`): the convs with PReLU ops between them, x / 255 folded into the first
    conv and x 255 into the last, then the nearest anchor (`nearest_weight`) added at LR resolution and one
    depth-to-space. The 1/255 commutes with the first conv's zero padding, and 255 * (residual + x / 255) is
    255 * residual + x, the anchor on 0..255 itself."""
    scale = model.config.scale
    convs = [layer for layer in model.body if isinstance(layer, nn.Conv2d)]  # n_layers >= 2: first != last
    prelus = [layer for layer in model.body if isinstance(layer, nn.PReLU)]
    ops: list[Op] = []
    h = "lr"
    for i, (conv, prelu) in enumerate(zip(convs[:-1], prelus)):
        weight = conv.weight.detach().double() / (255.0 if i == 0 else 1.0)
        ops += [_conv(h, f"conv{i}", weight, conv.bias),
                {"op": "prelu", "in": [f"conv{i}"], "out": f"act{i}", "slopes": _f32(prelu.weight)}]
        h = f"act{i}"
    last = convs[-1]
    ops.append(_conv(h, "residual", last.weight.detach().double() * 255.0, last.bias.detach().double() * 255.0))
    return ops + [_conv("lr", "anchor", nearest_weight(scale), np.zeros(3 * scale**2), pad="none"),
                  {"op": "add", "in": ["residual", "anchor"], "out": "phases"},
                  {"op": "depth_to_space", "in": ["phases"], "out": "sr", "factor": scale}]


#: family name -> phone-form writer of a deployed net of that family.
FORMS = {"compact": _compact_form, "edsr": _edsr_form, "tiny": _tiny_form}


def phone_form(model: nn.Module) -> list[Op]:
    """The phone form (module docstring) of a tinysr network, from its deployed (collapsed) twin."""
    family = getattr(getattr(model, "config", None), "family", None)
    if family not in FORMS:
        raise TinySRError(f"phone formats support the families {sorted(FORMS)}, not {family!r}")
    return FORMS[family](deployed(model).eval())


# ---------------------------------------------------------------------------------------------------- torch twin


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """NCHW -> NCH'W' padded by `pad` on each side with the half-sample mirror, as concatenated 1-pixel slices
    with constant (negative on the right) bounds: no flip, no gather and no size arithmetic, so every converter
    maps it to its own slice and concat ops with dynamic sizes."""
    for dim in (3, 2):
        left = [_slice(x, dim, k, k + 1) for k in range(pad - 1, -1, -1)]
        right = [_slice(x, dim, -1 - k, -k if k else None) for k in range(pad)]
        x = torch.cat([*left, x, *right], dim=dim)
    return x


def _slice(x: torch.Tensor, dim: int, start: int, stop: int | None) -> torch.Tensor:
    return x[:, :, start:stop] if dim == 2 else x[:, :, :, start:stop]


class PhoneNet(nn.Module):
    """Runs a phone form in torch: NCHW float32 RGB 0..255 in, NCHW at scale x out, not clamped."""

    def __init__(self, ops: list[Op]) -> None:
        super().__init__()
        self.ops = ops
        self.convs = nn.ModuleDict()
        self.prelus = nn.ModuleDict()
        for op in ops:
            if op["op"] == "conv":
                out_ch, in_ch, k, _ = op["weight"].shape
                conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2 if op["pad"] == "zeros" else 0)
                conv.weight.data = torch.from_numpy(op["weight"].copy())
                conv.bias.data = torch.from_numpy(op["bias"].copy())
                self.convs[_key(op)] = conv
            elif op["op"] == "prelu":
                prelu = nn.PReLU(len(op["slopes"]))
                prelu.weight.data = torch.from_numpy(op["slopes"].copy())
                self.prelus[_key(op)] = prelu
            elif op["op"] == "add_channels":
                self.register_buffer(_key(op), torch.from_numpy(op["value"].reshape(1, -1, 1, 1).copy()))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        values = {"lr": lr}
        for op in self.ops:
            args = [values[name] for name in op["in"]]
            values[op["out"]] = self._apply(op, args)
        return values[self.ops[-1]["out"]]

    def _apply(self, op: Op, args: list[torch.Tensor]) -> torch.Tensor:
        kind = op["op"]
        if kind == "conv":
            y = self.convs[_key(op)](args[0])
            return F.relu(y) if op["act"] == "relu" else y
        if kind == "prelu":
            return self.prelus[_key(op)](args[0])
        if kind == "leaky_relu":
            return F.leaky_relu(args[0], op["slope"])
        if kind == "add":
            return args[0] + args[1]
        if kind == "add_channels":
            return args[0] + getattr(self, _key(op))
        if kind == "symmetric_pad":
            return symmetric_pad(args[0], op["pad"])
        if kind == "depth_to_space":
            return F.pixel_shuffle(args[0], op["factor"])
        raise TinySRError(f"unknown phone-form op {kind!r}")


def _key(op: Op) -> str:
    return op["out"].replace(".", "_")


def phone_net(model: nn.Module) -> PhoneNet:
    """`PhoneNet(phone_form(model))` in eval mode: the torch module the ncnn and Core ML exporters trace."""
    return PhoneNet(phone_form(model)).eval()
