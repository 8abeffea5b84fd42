"""Tiny family: deployed budgets, shapes, the exact collapse, the anchors and the Y-only colour path."""

import dataclasses
import re

import numpy as np
import pytest
import torch

from tinysr.color import rgb_to_ycbcr as np_rgb_to_ycbcr
from tinysr.errors import TinySRError
from tinysr.models import PRESETS, config_from_dict, config_to_dict, count_params, create_model
from tinysr.models.reparam import ReparamConv
from tinysr.models.tiny import BUDGETS, TINY_PRESETS, TinyConfig, TinySR, collapse, deployed_params
from tinysr.models.ops import rgb_to_ycbcr, ycbcr_to_rgb
from tinysr.resize import imresize

# Collapsed (deployed) parameter counts of every preset, from the layer plan by hand:
# sum over convs of in*out*k*k + out, e.g. tiny-1k-x2 = (1*7*25+7) + (7*7*9+7) + (7*4*9+4) = 182 + 448 + 256.
DEPLOYED = {
    "tiny-100-x2": 96, "tiny-250-x2": 234, "tiny-500-x2": 500, "tiny-1k-x2": 940, "tiny-2k-x2": 1668,
    "tiny-5k-x2": 4672, "tiny-100-x3": 90, "tiny-250-x3": 223, "tiny-500-x3": 437, "tiny-1k-x3": 981,
    "tiny-2k-x3": 1654, "tiny-5k-x3": 4486, "tiny-100-x4": 94, "tiny-250-x4": 226, "tiny-500-x4": 456,
    "tiny-1k-x4": 844, "tiny-2k-x4": 1696, "tiny-5k-x4": 4446,
}


def randomise_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (the zero-initialised last conv included) a random value of a typical size."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * 0.3)
    return model


def lr_batch(shape=(2, 3, 9, 7), dtype=torch.float32, seed: int = 1) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 255).to(dtype)


def test_every_budget_and_scale_has_a_preset():
    assert set(TINY_PRESETS) == {f"tiny-{b}-x{s}" for b in BUDGETS for s in (2, 3, 4)} == set(DEPLOYED)
    assert all(PRESETS[name] == config for name, config in TINY_PRESETS.items())


@pytest.mark.parametrize("name", sorted(TINY_PRESETS))
def test_preset_budget_count_and_shapes(name):
    budget, scale = re.fullmatch(r"tiny-(\w+)-x(\d)", name).groups()
    model = create_model(name)
    deployed = collapse(model)
    expand = 4 if name in ("tiny-5k-x2", "tiny-1k-x3", "tiny-1k-x2") else 1  # the presets trained expanded
    assert model.config.scale == int(scale) and model.config.expand == expand and model.config.channels == "y"
    assert deployed_params(model.config) == DEPLOYED[name] <= BUDGETS[budget]
    assert count_params(deployed) == DEPLOYED[name]
    if expand > 1:
        assert count_params(model) > DEPLOYED[name]  # the expanded training net is larger
    else:
        assert count_params(model) == DEPLOYED[name]
    lr = lr_batch((2, 3, 7, 5))
    for net in (model, deployed):
        assert net(lr).shape == (2, 3, 7 * int(scale), 5 * int(scale))


COLLAPSE_CASES = [
    TinyConfig(scale=2, n_feats=6, n_layers=3, expand=4, act="relu", anchor="bicubic"),
    TinyConfig(scale=3, n_feats=4, n_layers=4, expand=2, act="prelu", anchor="nearest", tail_kernel_size=1),
    TinyConfig(scale=4, n_feats=5, n_layers=2, expand=3, act="lrelu", anchor="none", channels="rgb"),
    TinyConfig(scale=2, n_layers=1, kernel_size=5, expand=4, act="identity", anchor="bicubic"),
    TinyConfig(scale=2, n_feats=4, n_layers=3, expand=2, kernel_size=3),  # last conv 4 -> 4: identity skip
]


@pytest.mark.parametrize("config", COLLAPSE_CASES, ids=lambda c: f"x{c.scale}-{c.act}-{c.anchor}-{c.channels}")
def test_collapse_is_exact(config):
    """Collapsed and expanded outputs agree to 1e-9 in float64; in float32 to 1e-6 of the output's magnitude (random
    weights of std 0.3 blow outputs up to ~1e3; see the next test for the 1e-4 bound at realistic weights)."""
    model = randomise_(TinySR(config)).double()
    plain = collapse(model)
    assert plain.config == dataclasses.replace(config, expand=1, collapsed=True)
    assert not any(isinstance(m, ReparamConv) for m in plain.modules())
    assert count_params(plain) == deployed_params(config)
    lr = lr_batch(dtype=torch.float64)
    expected = model(lr)
    assert torch.allclose(plain(lr), expected, rtol=0, atol=1e-9)
    assert (expected - model.float()(lr.float()).double()).abs().max() > 0  # float32 does differ ...
    atol = 1e-6 * expected.abs().max().item()
    assert torch.allclose(collapse(model.float())(lr.float()).double(), expected, rtol=0, atol=atol)  # ... a bit


def test_collapse_of_a_trained_style_model_within_1e4_float32():
    """Weights of a realistic size (default init, last conv non-zero): float32 collapse within 1e-4 on 0..255."""
    model = TinySR(dataclasses.replace(TINY_PRESETS["tiny-1k-x2"], expand=4))
    with torch.no_grad():
        model.convs[-1].reduce_conv.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(3))
        model.convs[-1].skip.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(4))
    lr = lr_batch((1, 3, 16, 16))
    assert (model(lr) - collapse(model)(lr)).abs().max() < 1e-4


def test_reparam_conv_collapse_by_hand():
    """1 -> 1 channel, 1x1 kernel, expand 2: y = (r0*e0 + r1*e1) x + (r0*b0 + r1*b1 + br) + (s x + bs)."""
    block = ReparamConv(1, 1, 1, expand=2)
    assert block.skip.weight.item() == 1.0 and block.skip.bias.item() == 0.0  # identity skip when in == out
    with torch.no_grad():
        block.expand_conv.weight.copy_(torch.tensor([2.0, 3.0]).view(2, 1, 1, 1))
        block.expand_conv.bias.copy_(torch.tensor([1.0, -1.0]))
        block.reduce_conv.weight.copy_(torch.tensor([0.5, 0.25]).view(1, 2, 1, 1))
        block.reduce_conv.bias.fill_(0.125)
        block.skip.weight.fill_(-1.0)
        block.skip.bias.fill_(4.0)
    conv = block.collapse()
    assert conv.weight.item() == 0.5 * 2 + 0.25 * 3 - 1  # 0.75
    assert conv.bias.item() == 0.5 * 1 + 0.25 * -1 + 0.125 + 4  # 4.375


def test_reparam_forward_is_the_three_branch_sum_with_the_same_gradients():
    """forward runs the folded conv; it must equal reduce(expand(x)) + skip(x), values and parameter gradients."""
    block = randomise_(ReparamConv(3, 5, 3, expand=4), seed=7).double()
    x = lr_batch((2, 3, 6, 7), dtype=torch.float64)
    literal = block.reduce_conv(block.expand_conv(x)) + block.skip(x)
    literal_grads = torch.autograd.grad(literal.square().sum(), list(block.parameters()))
    folded = block(x)
    folded_grads = torch.autograd.grad(folded.square().sum(), list(block.parameters()))
    assert torch.allclose(folded, literal, rtol=0, atol=1e-10)
    for got, want in zip(folded_grads, literal_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-8)


def test_untrained_bicubic_anchor_is_matlab_bicubic():
    """The last conv starts at zero, so a fresh Y-only net outputs exactly MATLAB imresize of the RGB input."""
    model = TinySR(TINY_PRESETS["tiny-1k-x3"]).double()
    lr = lr_batch((1, 3, 8, 6), dtype=torch.float64)
    expected = imresize(lr[0].permute(1, 2, 0).numpy(), 3)
    got = model(lr)[0].permute(1, 2, 0).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_untrained_nearest_anchor_is_nearest_upsampling():
    model = TinySR(TinyConfig(scale=2, channels="rgb", anchor="nearest", expand=2))
    lr = torch.arange(12, dtype=torch.float32).view(1, 3, 2, 2) * 20
    expected = lr.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.allclose(model(lr), expected, atol=1e-4)


def test_y_only_net_keeps_bicubic_chroma():
    """Whatever the weights, Cb/Cr of the output are the bicubic Cb/Cr of the input; Y differs from bicubic."""
    model = randomise_(TinySR(TinyConfig(scale=2, expand=2))).double()
    lr = lr_batch(dtype=torch.float64)
    out, bicubic = rgb_to_ycbcr(model(lr)), rgb_to_ycbcr(torch.from_numpy(
        imresize(lr[0].permute(1, 2, 0).numpy(), 2)).permute(2, 0, 1)[None])
    assert torch.allclose(out[:1, 1:], bicubic[:, 1:], rtol=0, atol=1e-9)
    assert (out[:1, :1] - bicubic[:, :1]).abs().max() > 1.0


def test_ycbcr_twins_match_numpy_and_round_trip():
    lr = lr_batch((1, 3, 4, 5), dtype=torch.float64)
    expected = np_rgb_to_ycbcr(lr[0].permute(1, 2, 0).numpy())
    got = rgb_to_ycbcr(lr)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-12)
    assert torch.allclose(ycbcr_to_rgb(got), lr, rtol=0, atol=1e-10)
    white = rgb_to_ycbcr(torch.full((1, 3, 1, 1), 255.0, dtype=torch.float64)).flatten()
    assert torch.allclose(white, torch.tensor([235.0, 128.0, 128.0], dtype=torch.float64), atol=1e-9)


def test_zero_init_last_conv_still_trains():
    """At init the residual is zero, yet the last layer gets a gradient, so the net leaves its anchor."""
    model = TinySR(dataclasses.replace(TINY_PRESETS["tiny-500-x2"], expand=4))
    lr, hr = lr_batch((1, 3, 8, 8)), lr_batch((1, 3, 16, 16), seed=2)
    (model(lr) - hr).abs().mean().backward()
    last = model.convs[-1]
    assert last.reduce_conv.weight.grad.abs().sum() > 0 and last.skip.weight.grad.abs().sum() > 0


def test_prelu_slopes_count_as_deployed_params():
    config = TinyConfig(scale=2, n_feats=4, n_layers=3, kernel_size=3, act="prelu", expand=2)
    assert deployed_params(config) == (9 * 4 + 4) + (4 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + 2 * 4  # 344
    assert count_params(collapse(TinySR(config))) == 344


def test_config_round_trip_and_bad_options():
    config = dataclasses.replace(TINY_PRESETS["tiny-2k-x4"], expand=1, collapsed=True)
    assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(TinySRError, match="anchor"):
        create_model("tiny", anchor="lanczos")
    with pytest.raises(TinySRError, match="kernel_size"):
        create_model("tiny-1k-x2", kernel_size=4)
    with pytest.raises(TinySRError, match="collapsed"):
        create_model("tiny-5k-x2", collapsed=True)  # expand 4: a training net is not collapsed
    with pytest.raises(TinySRError, match="NCHW RGB"):
        create_model("tiny-100-x2")(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (1, 1, 2, 5), (1, 2, 17, 31), (1, 1, 1, 6), (1, 1, 6, 1)])
def test_the_anchor_is_matlab_bicubic(scale, shape):
    """The periodic 5-tap anchor (`bicubic_upsample`) equals the dense-matrix MATLAB imresize, borders included."""
    from tinysr.models.ops import bicubic_upsample
    from tinysr.resize import imresize, imresize_torch

    x = torch.rand(shape, generator=torch.Generator().manual_seed(scale), dtype=torch.float64) * 255
    fast = bicubic_upsample(x, scale)
    assert fast.shape == (*shape[:2], shape[2] * scale, shape[3] * scale)
    assert (fast - imresize_torch(x, scale)).abs().max() < 1e-9
    image = x[0].permute(1, 2, 0).numpy()  # and against the numpy MATLAB imresize (float path)
    assert np.abs(fast[0].permute(1, 2, 0).numpy() - imresize(image, scale).reshape(fast.shape[2], fast.shape[3], -1)
                  ).max() < 1e-9


def test_y_net_output_is_the_ycbcr_recombination():
    """The Y-only forward (bicubic RGB + gain * residual) equals converting [Y_bic + residual, Cb_bic, Cr_bic]."""
    from tinysr.models.ops import bicubic_upsample, rgb_to_luma, ycbcr_to_rgb

    model = randomise_(TinySR(TINY_PRESETS["tiny-1k-x2"])).double()
    lr = lr_batch((2, 3, 11, 9), dtype=torch.float64)
    ycc = rgb_to_ycbcr(lr)
    assert torch.allclose(rgb_to_luma(lr), ycc[:, :1], atol=1e-12)
    up = bicubic_upsample(ycc, 2)
    expected = ycbcr_to_rgb(torch.cat([model.residual(ycc[:, :1] / 255) * 255 + up[:, :1], up[:, 1:]], dim=1))
    assert (model(lr) - expected).abs().max() < 1e-9
    assert (model.forward_luma(lr) - rgb_to_ycbcr(model(lr))[:, :1]).abs().max() < 1e-9
