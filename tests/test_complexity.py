"""MACs per output image: pinned by hand for EDSR 0/4 and a tiny preset, and linear in the output area."""

import dataclasses

import pytest

from tinysr.errors import TinySRError
from tinysr.models import PRESETS, EDSRConfig, create_model
from tinysr.models.complexity import anchor_macs_per_output, conv_macs_per_lr_pixel, macs_per_output
from tinysr.models.tiny import TINY_PRESETS, deployed_params, layer_plan


def test_edsr_0_4_x2_by_hand():
    lr_pixels, hr_pixels = 360 * 640, 720 * 1280
    per_lr = 3 * 4 * 9 + 4 * 4 * 9 + 4 * 16 * 9  # head, body end, upsampler conv (to 4 * scale^2)
    per_hr = 4 * 3 * 9  # tail, after the pixel shuffle
    expected = per_lr * lr_pixels + per_hr * hr_pixels
    assert expected == 290_304_000
    config = EDSRConfig(n_blocks=0, n_feats=4, scale=2)
    assert macs_per_output(config) == expected
    assert macs_per_output(create_model("edsr-tiny")) == expected  # a model works as well as its config
    assert anchor_macs_per_output(config) == 0
    assert macs_per_output(config, out_h=72, out_w=128) == expected // 100


def test_tiny_1k_x2_counts_the_collapsed_net():
    # (1 -> 6, 3x3), 2 x (6 -> 6, 3x3), (6 -> 4, 3x3) per LR pixel; expand=4 in training does not count.
    per_lr = 1 * 6 * 9 + 2 * 6 * 6 * 9 + 6 * 4 * 9
    assert per_lr == 918 == deployed_params(PRESETS["tiny-1k-x2"]) - (6 + 6 + 6 + 4)
    assert macs_per_output(PRESETS["tiny-1k-x2"]) == per_lr * 360 * 640 == 211_507_200
    assert macs_per_output(create_model("tiny-1k-x2", expand=4)) == 211_507_200  # expanded: counted collapsed
    # Y + Cb + Cr bicubic: 4 taps at 720 x 640 then at 720 x 1280; 9 MACs per LR and per HR pixel for the colours.
    assert anchor_macs_per_output(PRESETS["tiny-1k-x2"]) == 3 * 4 * (720 * 640 + 720 * 1280) + 9 * (230_400 + 921_600)


@pytest.mark.parametrize("name", sorted(TINY_PRESETS))
def test_tiny_presets_match_their_layer_plan(name):
    config = TINY_PRESETS[name]
    assert conv_macs_per_lr_pixel(config) == sum(i * o * k * k for i, o, k in layer_plan(config))


def test_x3_at_720p_and_bad_sizes():
    config = PRESETS["tiny-1k-x3"]
    assert macs_per_output(config) == conv_macs_per_lr_pixel(config) * 102_400  # 921,600 / 9 LR pixels
    rgb = dataclasses.replace(config, channels="rgb", anchor="nearest")
    assert anchor_macs_per_output(rgb) == 0
    with pytest.raises(TinySRError, match="output 1280x721: its area is not a whole number of x3 LR pixels"):
        macs_per_output(config, out_h=721, out_w=1280)
    with pytest.raises(TinySRError, match="expected a tinysr model or model config, got int"):
        macs_per_output(3)
