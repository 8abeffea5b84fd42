"""`--model` resolution: weights files, run folders, unknown names, and tiny models deployed folded."""

import numpy as np
import pytest
import torch

from tinysr.models.weights import save_weights
from tinysr.errors import TinySRError
from tinysr.models import count_params, create_model
from tinysr.infer.load import RUN_BEST, load_network, resolve_upscaler


def test_a_run_folder_means_its_best_weights_and_tiny_models_come_back_folded(tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny-1k-x2", expand=4).eval()  # trained expanded, comes back folded
    for p in model.parameters():  # the last conv starts at zero; give every weight a value
        p.data.normal_(0, 0.05)
    save_weights(tmp_path / RUN_BEST, model)
    loaded, where = load_network(str(tmp_path), scale=2)
    assert where == str(tmp_path / RUN_BEST)
    assert loaded.config.collapsed and count_params(loaded) == 940 < count_params(model)
    x = torch.rand(1, 3, 12, 10) * 255
    with torch.no_grad():
        assert torch.allclose(loaded.to_torch()(x), model(x), atol=1e-3)


def test_unknown_names_and_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(TinySRError, match="unknown model 'nope'"):
        load_network("nope", scale=2)
    with pytest.raises(TinySRError, match="no such weights file"):
        load_network(str(tmp_path / "missing.safetensors"), scale=2)
    with pytest.raises(TinySRError, match="is it a tinysr run folder"):
        load_network(str(tmp_path), scale=2)


def test_self_ensemble_upscaler_is_flip_equivariant_and_says_so(tmp_path):
    torch.manual_seed(1)
    model = create_model("tiny-1k-x2").eval()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    save_weights(tmp_path / RUN_BEST, model)
    lr = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    plain, plain_desc, _ = resolve_upscaler(str(tmp_path), scale=2)
    averaged, desc, _ = resolve_upscaler(str(tmp_path), scale=2, self_ensemble=True)
    assert desc == plain_desc + " + self-ensemble (x8)"
    flipped = np.ascontiguousarray(lr[:, ::-1])
    # one pass of a random net is not mirror-symmetric; the average over the 8 flips/rotations is
    assert np.abs(plain(flipped)[:, ::-1] - plain(lr)).max() > 1.0
    assert np.abs(averaged(flipped)[:, ::-1] - averaged(lr)).max() < 1e-3
    rotated = np.ascontiguousarray(np.rot90(lr))
    assert np.abs(np.rot90(averaged(rotated), -1) - averaged(lr)).max() < 1e-3
    assert averaged(lr).shape == (18, 22, 3)
    with pytest.raises(TinySRError, match="bicubic has nothing to average"):
        resolve_upscaler("bicubic", scale=2, self_ensemble=True)
