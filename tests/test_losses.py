"""Losses: `l1-y` measures luma only, and a Y-only tiny net's fast luma path gives the same loss and gradients."""

import pytest
import torch
import torch.nn.functional as F

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.train.losses import LOSSES, l1_luma, l1_rgb, predict_luma
from tinysr.models import create_model
from tinysr.models.ops import rgb_to_ycbcr
from tinysr.train.config import TrainConfig


def _randomised(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(2, 3, 10, 10, generator=g, dtype=torch.float64) * 255,
            torch.rand(2, 3, 20, 20, generator=g, dtype=torch.float64) * 255)


@pytest.mark.parametrize("name", ["tiny-1k-x2", "tiny-100-x2"])
def test_fast_luma_path_equals_luma_of_the_rgb_output(name):
    model, (lr, hr) = _randomised(name), _batch()
    assert torch.allclose(model.forward_luma(lr), rgb_to_ycbcr(model(lr))[:, :1], atol=1e-9, rtol=0)
    fast = l1_luma(model, lr, hr)
    fast.backward()
    fast_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    slow = F.l1_loss(rgb_to_ycbcr(model(lr))[:, :1], rgb_to_ycbcr(hr)[:, :1])
    slow.backward()
    assert fast.item() == pytest.approx(slow.item(), abs=1e-6)
    for a, b in zip(fast_grads, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, atol=1e-9)


def test_luma_loss_ignores_chroma_and_rgb_loss_does_not():
    """Two HR targets with the same Y and different Cb/Cr: l1-y cannot tell them apart, l1 can."""
    model, (lr, hr) = _randomised("edsr-tiny"), _batch()
    ycc = rgb_to_ycbcr(hr)
    shifted = ycc.clone()
    shifted[:, 1:] += 10.0  # chroma moved by 10 levels, luma kept
    from tinysr.models.ops import ycbcr_to_rgb
    hr2 = ycbcr_to_rgb(shifted)
    assert l1_luma(model, lr, hr).item() == pytest.approx(l1_luma(model, lr, hr2).item(), abs=1e-4)
    assert abs(l1_rgb(model, lr, hr).item() - l1_rgb(model, lr, hr2).item()) > 1.0


def test_a_perfect_prediction_has_zero_loss_under_both():
    class Oracle(torch.nn.Module):
        def forward(self, lr):
            return hr

    lr, hr = _batch()
    for name, loss in LOSSES.items():
        assert loss(Oracle(), lr, hr).item() == pytest.approx(0.0, abs=1e-4), name
    assert predict_luma(Oracle(), lr).shape == (2, 1, 20, 20)


def test_unknown_loss_is_an_error(capsys, tmp_path):
    with pytest.raises(TinySRError, match="unknown loss 'l2'"):
        TrainConfig(loss="l2")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--loss", "l2", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "--loss" in capsys.readouterr().err
