"""Tests for tinysr.data.sampler: alignment, draw order, determinism, resume, augmentation, too-small images."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysr.data.cache import PairedImages
from tinysr.data.degrade import degrade
from tinysr.data.sampler import PatchSampler, dihedral
from tinysr.errors import TinySRError


def _pairs(lr_sizes, *, scale: int, degradation: str = "cv2-area", seed: int = 0) -> PairedImages:
    """Random HR images whose LR (by a block-local degradation) has the given (h, w) sizes."""
    rng = np.random.default_rng(seed)
    hr = [rng.integers(0, 256, size=(h * scale, w * scale, 3), dtype=np.uint8) for h, w in lr_sizes]
    lr = [degrade(img, scale, degradation) for img in hr]
    names = tuple(f"img{i}" for i in range(len(hr)))
    return PairedImages(names=names, hr=hr, lr=lr, scale=scale, degradation=degradation,
                        cache_path=Path("/nonexistent"), cache_hit=False)  # fmt: skip


def _hwc_uint8(batch: torch.Tensor) -> np.ndarray:
    return batch.permute(0, 2, 3, 1).numpy().astype(np.uint8)


def test_batch_shapes_and_convention():
    sampler = PatchSampler(_pairs([(60, 70), (50, 90)], scale=2), scale=2, generator=np.random.default_rng(0))
    lr, hr = sampler.next_batch()
    assert lr.shape == (16, 3, 48, 48) and hr.shape == (16, 3, 96, 96)
    assert lr.dtype == hr.dtype == torch.float32 and lr.is_contiguous() and hr.is_contiguous()
    assert lr.min() >= 0 and lr.max() <= 255 and torch.equal(lr, lr.round())
    assert len(sampler) == 2 and sampler.batches_drawn == 1


# Block means commute with aligned crops and with the dihedral group; `nearest` (off-centre pick at even scales)
# commutes with aligned crops only.
@pytest.mark.parametrize("degradation, augment", [("cv2-area", True), ("nearest", False)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_crops_are_aligned(scale, degradation, augment):
    pairs = _pairs([(40, 52), (33, 61), (70, 35)], scale=scale, degradation=degradation)
    sampler = PatchSampler(pairs, scale=scale, patch=24, batch_size=32, augment=augment,
                           generator=np.random.default_rng(scale))  # fmt: skip
    for _ in range(3):
        lr, hr = (_hwc_uint8(t) for t in sampler.next_batch())
        for lr_patch, hr_patch in zip(lr, hr):
            assert (degrade(np.ascontiguousarray(hr_patch), scale, degradation) == lr_patch).all()


@pytest.mark.parametrize("augment", [True, False])
def test_draw_order_and_crop_positions(augment):
    """Per batch: B image indices, B rows, B columns, B dihedral codes, in that order, from the generator."""
    pairs = _pairs([(50, 60), (64, 49), (48, 48)], scale=3)
    sampler = PatchSampler(pairs, scale=3, patch=48, batch_size=8, augment=augment,
                           generator=np.random.default_rng(7))  # fmt: skip
    lr, hr = (_hwc_uint8(t) for t in sampler.next_batch())
    rng = np.random.default_rng(7)
    image = rng.integers(0, 3, size=8)
    y = rng.integers(0, np.array([3, 17, 1])[image])
    x = rng.integers(0, np.array([13, 2, 1])[image])
    code = rng.integers(0, 8, size=8) if augment else np.zeros(8, dtype=int)
    for i in range(8):
        k, yi, xi = image[i], y[i], x[i]
        assert (lr[i] == dihedral(pairs.lr[k][yi : yi + 48, xi : xi + 48], code[i])).all()
        assert (hr[i] == dihedral(pairs.hr[k][3 * yi : 3 * yi + 144, 3 * xi : 3 * xi + 144], code[i])).all()
    assert augment == bool(code.any())


def test_dihedral_gives_the_8_distinct_symmetries():
    patch = np.arange(3 * 3).reshape(3, 3, 1).repeat(3, axis=2)
    outs = {dihedral(patch, c).tobytes() for c in range(8)}
    expect = {np.rot90(p, k, axes=(0, 1)).tobytes() for p in (patch, patch[:, ::-1]) for k in range(4)}
    assert outs == expect and len(outs) == 8
    for code in range(8):  # the documented definition
        rotated = np.rot90(patch, code % 4, axes=(0, 1))
        assert (dihedral(patch, code) == (rotated.transpose(1, 0, 2) if code >= 4 else rotated)).all()
    assert (dihedral(patch, 0) == patch).all() and (dihedral(patch, 4) == patch.transpose(1, 0, 2)).all()


def test_same_seed_same_batches_other_seed_differs():
    pairs = _pairs([(60, 70), (50, 90)], scale=2)
    a, b, c = (PatchSampler(pairs, scale=2, generator=np.random.default_rng(s)) for s in (1, 1, 2))
    for _ in range(3):
        (lr_a, hr_a), (lr_b, hr_b), (lr_c, _) = a.next_batch(), b.next_batch(), c.next_batch()
        assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b) and not torch.equal(lr_a, lr_c)


def test_state_dict_resumes_the_exact_sequence():
    pairs = _pairs([(60, 70), (50, 90)], scale=2)
    sampler = PatchSampler(pairs, scale=2, generator=np.random.default_rng(3))
    for _ in range(3):
        sampler.next_batch()
    state = json.loads(json.dumps(sampler.state_dict()))  # it survives a round trip through a JSON/ckpt file
    expected = [sampler.next_batch() for _ in range(2)]
    resumed = PatchSampler(pairs, scale=2, generator=np.random.default_rng(999))
    resumed.load_state_dict(state)
    assert resumed.batches_drawn == 3
    for lr_hr, (lr, hr) in zip(expected, [resumed.next_batch() for _ in range(2)]):
        assert torch.equal(lr_hr[0], lr) and torch.equal(lr_hr[1], hr)
    assert resumed.batches_drawn == 5


def test_small_images_skipped_with_one_counted_warning():
    pairs = _pairs([(60, 70), (47, 90), (30, 30), (50, 50)], scale=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = PatchSampler(pairs, scale=2, patch=48, generator=np.random.default_rng(0))
    assert [str(w.message) for w in caught] == ["skipped 2 of 4 images smaller than the LR patch 48x48: img1, img2"]
    assert len(sampler) == 2
    lr, _ = sampler.next_batch()
    assert lr.shape == (16, 3, 48, 48)


def test_all_images_too_small_is_an_error():
    with pytest.raises(TinySRError, match=r"all 2 images are smaller than the LR patch 48x48"):
        PatchSampler(_pairs([(40, 70), (47, 47)], scale=2), scale=2, generator=np.random.default_rng(0))


def test_bad_options():
    pairs = _pairs([(60, 70)], scale=2)
    with pytest.raises(TinySRError, match=r"sampler scale x3 does not match the pairs' scale x2"):
        PatchSampler(pairs, scale=3, generator=np.random.default_rng(0))
    with pytest.raises(TinySRError, match="numpy.random.Generator"):
        PatchSampler(pairs, scale=2, generator=0)
    with pytest.raises(TinySRError, match="patch and batch_size must be positive"):
        PatchSampler(pairs, scale=2, patch=0, generator=np.random.default_rng(0))
    broken = PairedImages(names=("a",), hr=[pairs.hr[0][:-2]], lr=pairs.lr, scale=2, degradation="x",
                          cache_path=Path("/nonexistent"), cache_hit=False)  # fmt: skip
    with pytest.raises(TinySRError, match="a: HR .* is not LR .* times x2"):
        PatchSampler(broken, scale=2, generator=np.random.default_rng(0))
