"""tinysr.data.gpu_sampler on the CPU device (the same code runs on CUDA): crops, dihedral codes, on-the-fly bicubic,
sharding over ranks, counter-based resume, errors."""

import numpy as np
import pytest
import torch

from tinysr.data.degrade import bicubic
from tinysr.data.io import read_image
from tinysr.errors import TinySRError
from tinysr.data.gpu_sampler import DevicePatchSampler, batch_seed, dihedral_coords, mirror


def dihedral(patch: np.ndarray, code: int) -> np.ndarray:
    """The convention of `tinysr.data.sampler.dihedral`: rot90 by code % 4, then transpose if code >= 4."""
    out = np.rot90(patch, code % 4, axes=(0, 1))
    return out.transpose(1, 0, 2) if code >= 4 else out


def coordinate_images(scale: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """LR pixels that spell their own (row, col, image) and block-constant HR, so every crop can be traced back."""
    lr, hr = [], []
    for k, (h, w) in enumerate([(20, 31), (27, 22)]):
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        img = np.stack([rows, cols, np.full_like(rows, k)], axis=2).astype(np.uint8)
        lr.append(img)
        hr.append(np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8)))
    return hr, lr


def test_dihedral_coords_reproduce_the_cpu_samplers_eight_transforms():
    patch = np.arange(5 * 5 * 1).reshape(5, 5, 1)
    grid = torch.arange(5)
    for code in range(8):
        row, col = dihedral_coords(grid.view(-1, 1), grid.view(1, -1), torch.tensor(code), 5)
        assert np.array_equal(patch[row.numpy(), col.numpy()], dihedral(patch, code)), code


def test_mirror_is_half_sample_symmetric_like_imresize_padding():
    assert mirror(torch.arange(-3, 8), torch.tensor(5)).tolist() == [2, 1, 0, 0, 1, 2, 3, 4, 4, 3, 2]


def test_stored_crops_are_aligned_augmented_windows_of_the_images():
    hr, lr = coordinate_images(scale=3)
    sampler = DevicePatchSampler(hr, lr, scale=3, patch=6, batch_size=32, seed=5, device="cpu")
    lr_batch, hr_batch = sampler.next_batch()
    assert lr_batch.shape == (32, 3, 6, 6) and hr_batch.shape == (32, 3, 18, 18) and lr_batch.dtype == torch.float32
    codes = set()
    for lr_patch, hr_patch in zip(lr_batch.permute(0, 2, 3, 1).numpy(), hr_batch.permute(0, 2, 3, 1).numpy()):
        assert np.array_equal(hr_patch[::3, ::3], lr_patch)  # HR block-constant: aligned for every code
        k, y, x = int(lr_patch[0, 0, 2]), int(lr_patch[..., 0].min()), int(lr_patch[..., 1].min())
        window = lr[k][y : y + 6, x : x + 6].astype(np.float32)
        matches = [c for c in range(8) if np.array_equal(dihedral(window, c), lr_patch)]
        assert matches, (k, y, x)
        codes.update(matches)
    assert len(codes) == 8


def test_on_the_fly_bicubic_matches_degrading_the_whole_image(data_dir):
    """Crops at the corners and inside: the mirrored margin makes the crop's LR the whole image's LR, up to
    float32 (the cache's `bicubic` is float64) flipping a rounding on at most 1 in 1,000 values."""
    hr, _ = read_image(data_dir / "Set5" / "butterfly.png")
    expected = bicubic(hr, 2)  # 128 x 128
    sampler = DevicePatchSampler([hr], None, scale=2, patch=24, batch_size=4, augment=False, seed=0, device="cpu")
    y, x = torch.tensor([0, 104, 0, 51]), torch.tensor([0, 104, 104, 37])
    lr_batch, hr_batch = sampler.crops(torch.zeros(4, dtype=torch.int64), y, x, torch.zeros(4, dtype=torch.int64))
    for i, (yi, xi) in enumerate(zip(y.tolist(), x.tolist())):
        assert np.array_equal(hr_batch[i].permute(1, 2, 0).numpy(), hr[2 * yi : 2 * yi + 48, 2 * xi : 2 * xi + 48])
        diff = np.abs(lr_batch[i].permute(1, 2, 0).numpy() - expected[yi : yi + 24, xi : xi + 24])
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 2, (yi, xi, np.count_nonzero(diff))


def test_on_the_fly_augmentation_is_applied_to_both_lr_and_hr(data_dir):
    hr, _ = read_image(data_dir / "Set5" / "bird.png")
    sampler = DevicePatchSampler([hr], None, scale=2, patch=16, batch_size=8, seed=0, device="cpu")
    zero, ones = torch.zeros(8, dtype=torch.int64), torch.full((8,), 20)
    plain_lr, plain_hr = sampler.crops(zero, ones, ones, zero)
    lr_batch, hr_batch = sampler.crops(zero, ones, ones, torch.arange(8))
    for code in range(8):
        as_hwc = lambda t: t.permute(1, 2, 0).numpy()  # noqa: E731
        assert np.array_equal(as_hwc(lr_batch[code]), dihedral(as_hwc(plain_lr[code]), code))
        assert np.array_equal(as_hwc(hr_batch[code]), dihedral(as_hwc(plain_hr[code]), code))


def test_ranks_split_the_global_batch_and_together_see_the_single_process_batch():
    hr, lr = coordinate_images(scale=2)
    make = lambda rank, world: DevicePatchSampler(hr, lr, scale=2, patch=5, batch_size=8, seed=3,  # noqa: E731
                                                  device="cpu", rank=rank, world_size=world)
    single, rank0, rank1 = make(0, 1), make(0, 2), make(1, 2)
    for _ in range(3):
        whole = single.next_batch()
        halves = rank0.next_batch(), rank1.next_batch()
        assert halves[0][0].shape[0] == 4
        for t in range(2):
            assert torch.equal(torch.cat([halves[0][t], halves[1][t]]), whole[t])
    assert not torch.equal(halves[0][0], halves[1][0])


def test_resume_from_state_continues_the_same_batches_even_with_another_world_size():
    hr, lr = coordinate_images(scale=2)
    first = DevicePatchSampler(hr, lr, scale=2, patch=5, batch_size=4, seed=11, device="cpu")
    for _ in range(3):
        first.next_batch()
    state = first.state_dict()
    assert state == {"seed": 11, "batches_drawn": 3}
    ahead = [first.next_batch() for _ in range(2)]
    resumed = DevicePatchSampler(hr, lr, scale=2, patch=5, batch_size=4, seed=11, device="cpu",
                                 rank=1, world_size=2)
    resumed.load_state_dict(state)
    for lr_full, _ in ahead:
        assert torch.equal(resumed.next_batch()[0], lr_full[2:])
    with pytest.raises(TinySRError, match="state is for seed 11, this run has seed 12"):
        DevicePatchSampler(hr, lr, scale=2, patch=5, batch_size=4, seed=12, device="cpu").load_state_dict(state)


def test_batch_seed_is_pinned():
    assert batch_seed(0, 0) == batch_seed(0, 0) != batch_seed(0, 1) != batch_seed(1, 0)
    assert batch_seed(0, 0) == 7896617691693857887  # numpy SeedSequence([0, 0]), top bit dropped
    assert 0 <= batch_seed(2**40, 10**9) < 2**63


def test_bad_input_gives_one_line_errors():
    hr, lr = coordinate_images(scale=2)
    with pytest.raises(TinySRError, match="batch size 6 must split evenly over 4 ranks"):
        DevicePatchSampler(hr, lr, scale=2, patch=5, batch_size=6, seed=0, device="cpu", world_size=4)
    with pytest.warns(UserWarning, match="skipped 1 of 2 images smaller than the LR patch 21x21"):
        assert len(DevicePatchSampler(hr, lr, scale=2, patch=21, seed=0, device="cpu")._lr_height) == 1
    with pytest.raises(TinySRError, match="all 2 images are smaller than the LR patch 23x23 at x2; lower --patch"):
        DevicePatchSampler(hr, lr, scale=2, patch=23, seed=0, device="cpu")
    with pytest.raises(TinySRError, match=r"LR image 1 \(20, 31, 3\) is not HR"):
        DevicePatchSampler(hr, [lr[0], lr[0]], scale=2, patch=5, seed=0, device="cpu")
    with pytest.raises(TinySRError, match="must be HWC RGB uint8"):
        DevicePatchSampler([hr[0].astype(np.float32)], None, scale=2, patch=5, seed=0, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_crops_equal_the_cpu_crops():
    """The same (image, y, x, code) give the same crops on CUDA: exactly for stored LR; on the fly, CUDA's float32
    matmul order may flip a rounding by one level on a few values. (Synthetic image: the GPU machine has no data.)"""
    rng = np.random.default_rng(0)
    hr = np.kron(rng.integers(0, 256, size=(64, 64, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 256 x 256
    lr = bicubic(hr, 2)
    where = [torch.tensor(v) for v in ([0, 0, 0, 0], [0, 104, 3, 51], [0, 104, 100, 37], [0, 3, 5, 7])]
    for stored in ([lr], None):
        crops = []
        for device in ("cpu", "cuda"):
            sampler = DevicePatchSampler([hr], stored, scale=2, patch=24, batch_size=4, seed=0, device=device)
            crops.append([t.cpu() for t in sampler.crops(*(w.to(device) for w in where))])
            assert sampler.next_batch()[1].device.type == device
        assert torch.equal(crops[0][1], crops[1][1])
        diff = (crops[0][0] - crops[1][0]).abs()
        assert diff.max() <= (0 if stored else 1) and int((diff > 0).sum()) <= 8
