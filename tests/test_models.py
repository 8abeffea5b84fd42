"""EDSR family: the study's exact parameter counts, shapes, presets and the config round trip."""

import dataclasses

import pytest
import torch

from tinysr.errors import TinySRError
from tinysr.models import (
    MODELS, PRESETS, EDSRConfig, config_from_dict, config_to_dict, count_params, create_model, list_models,
)

# (n_blocks, n_feats) -> trainable parameters at x2, from the study's Tables II-IV.
STUDY_COUNTS_X2 = {
    (0, 1): 108, (0, 2): 303, (0, 4): 963, (0, 16): 12_483, (0, 64): 188_163,
    (1, 64): 262_019, (2, 64): 335_875, (4, 64): 483_587, (8, 64): 779_011, (16, 64): 1_369_859,
    (32, 64): 2_551_555, (64, 64): 4_914_947, (16, 256): 21_847_043, (16, 512): 87_341_059,
    (32, 512): 162_854_915,
}


@pytest.mark.parametrize(("blocks_feats", "expected"), sorted(STUDY_COUNTS_X2.items()))
def test_study_parameter_counts_x2(blocks_feats, expected):
    n_blocks, n_feats = blocks_feats
    with torch.device("meta"):  # counts only: no need to allocate 160 M floats
        model = create_model("edsr", n_blocks=n_blocks, n_feats=n_feats, scale=2)
    assert count_params(model) == expected


@pytest.mark.parametrize(("scale", "expected"), [(3, 1_554_499), (4, 1_517_571)])
def test_baseline_counts_x3_x4(scale, expected):
    assert count_params(create_model("edsr-baseline", scale=scale)) == expected


def test_rgb_mean_is_a_buffer_not_a_parameter():
    model = create_model("edsr-tiny")
    assert "rgb_mean" in dict(model.named_buffers())
    assert torch.allclose(model.rgb_mean.flatten(), torch.tensor([0.4488, 0.4371, 0.4040]) * 255)
    assert all("rgb_mean" not in n for n, _ in model.named_parameters())


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape(scale):
    model = create_model("edsr", n_blocks=1, n_feats=8, scale=scale)
    out = model(torch.rand(2, 3, 7, 5) * 255)
    assert out.shape == (2, 3, 7 * scale, 5 * scale)


def test_zero_weights_give_the_input_mean_only():
    """With every conv zeroed the network outputs the RGB mean: the mean is added back exactly once."""
    model = create_model("edsr-tiny")
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    out = model(torch.rand(1, 3, 4, 4) * 255)
    assert torch.allclose(out, model.rgb_mean.expand_as(out))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_a_dict(name):
    config = PRESETS[name]
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_stored_dict_carries_the_family(name):
    data = config_to_dict(PRESETS[name])
    assert data["family"] == PRESETS[name].family == name.split("-")[0]
    assert config_from_dict({k: v for k, v in data.items() if k != "family" or v != "edsr"}) == PRESETS[name]


@pytest.mark.parametrize("name, other", [("edsr", "tiny"), ("edsr-tiny", "tiny"), ("tiny", "edsr"),
                                         ("tiny-1k-x2", "edsr")])
def test_the_family_is_not_an_override(name, other):
    with pytest.raises(TinySRError) as err:
        create_model(name, family=other)
    assert str(err.value) == (f"model {name!r}: the family cannot be overridden; give a model name of that family "
                              "(compact, edsr, tiny or one of its presets)")
    assert all("family" not in {f.name for f in dataclasses.fields(cls)} for cls, _ in MODELS.values())


def test_presets_are_what_they_say():
    assert PRESETS["edsr-paper"] == EDSRConfig(n_blocks=32, n_feats=256, res_scale=0.1)
    assert (PRESETS["edsr-tiny"].n_blocks, PRESETS["edsr-tiny"].n_feats) == (0, 4)
    assert PRESETS["edsr-baseline"].n_blocks == 16 and PRESETS["edsr-baseline"].n_feats == 64


def test_overrides_and_frozen():
    model = create_model("edsr-tiny", scale=4)
    assert model.config.scale == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.scale = 2  # type: ignore[misc]


def test_unknown_preset_and_bad_scale_are_user_errors():
    with pytest.raises(TinySRError, match="unknown model 'edsr-huge'"):
        create_model("edsr-huge")
    with pytest.raises(TinySRError, match="scale"):
        create_model("edsr", scale=5)
    assert "edsr-tiny" in list_models() and "edsr" in list_models()
