"""`PatchSampler`: aligned random HR/LR training patches with dihedral augmentation, from `PairedImages`.

Convention: `next_batch()` returns ``(lr, hr)`` float32 torch tensors in NCHW RGB, range 0..255 (EDSR's input
convention), ``lr`` of shape ``(B, 3, patch, patch)`` and ``hr`` of shape ``(B, 3, patch * scale, patch * scale)``.
The LR crop at (y, x) pairs with the HR crop at (y * scale, x * scale), so ``degrade(hr_patch) == lr_patch`` for a
block-local degradation. All randomness comes from the caller's `np.random.Generator`; `state_dict` captures it,
so a resumed run draws the very same batches.

Per batch the sampler draws, in this order, four vectors of B integers: image index, row, column, dihedral code.
Each crop is then one strided copy (slice, dihedral view and HWC -> CHW are all views) that numpy converts to
float32 straight into the preallocated batch tensor: B = 16 copies are cheap, with no per-pixel Python loop.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError


def dihedral(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/rotations of an HWC patch, as a view: ``np.rot90(patch, code % 4)`` (counter-clockwise,
    axes (0, 1)), then rows and columns swapped when code >= 4. code 0 is the identity. Applied with the same code
    to an LR patch and its HR patch, the pair stays aligned."""
    # Plain slicing instead of np.rot90/np.flip: same views, without their per-call argument handling (~10 us a
    # call, which is most of a batch at B=16).
    k = code % 4
    if k == 1:
        patch = patch[:, ::-1].swapaxes(0, 1)
    elif k == 2:
        patch = patch[::-1, ::-1]
    elif k == 3:
        patch = patch.swapaxes(0, 1)[:, ::-1]
    return patch.swapaxes(0, 1) if code >= 4 else patch


class PatchSampler:
    """Random aligned (LR, HR) patches from `pairs`; see the module docstring for the tensor convention.

    pairs: HR/LR images (HWC RGB uint8), HR = LR * scale exactly, e.g. from `tinysr.data.cache.load_pairs`.
    scale: the integer upscaling factor; must match `pairs.scale`.
    patch: LR patch side (the HR patch side is patch * scale).
    augment: draw one of the 8 dihedral transforms per crop (else always the identity).
    generator: the only source of randomness.
    Images whose LR side is smaller than `patch` are skipped with one warning that counts them; if every image is
    too small, TinySRError.
    """

    def __init__(
        self,
        pairs: PairedImages,
        *,
        scale: int,
        patch: int = 48,
        batch_size: int = 16,
        augment: bool = True,
        generator: np.random.Generator,
    ) -> None:
        if scale != pairs.scale:
            raise TinySRError(f"sampler scale x{scale} does not match the pairs' scale x{pairs.scale}")
        if patch < 1 or batch_size < 1:
            raise TinySRError(f"patch and batch_size must be positive, got patch={patch}, batch_size={batch_size}")
        if not isinstance(generator, np.random.Generator):
            raise TinySRError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
        self.scale, self.patch, self.batch_size, self.augment = scale, patch, batch_size, augment
        self.generator = generator
        self.batches_drawn = 0
        hr, lr = self._usable_images(pairs)
        # Plain ndarray views of the (memory-mapped) images: np.memmap's slicing hooks cost more than the copy.
        self._hr, self._lr = [a.view(np.ndarray) for a in hr], [a.view(np.ndarray) for a in lr]
        # Highest valid top-left corner + 1 per image, for the vectorised corner draw.
        self._y_end = np.array([lr.shape[0] - patch + 1 for lr in self._lr], dtype=np.int64)
        self._x_end = np.array([lr.shape[1] - patch + 1 for lr in self._lr], dtype=np.int64)

    def _usable_images(self, pairs: PairedImages) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Check HR = LR * scale for every pair and drop (with one counted warning) those smaller than the patch."""
        hr_kept, lr_kept, small = [], [], []
        for name, hr, lr in zip(pairs.names, pairs.hr, pairs.lr):
            if hr.shape != (lr.shape[0] * self.scale, lr.shape[1] * self.scale, lr.shape[2]):
                raise TinySRError(f"{name}: HR {hr.shape} is not LR {lr.shape} times x{self.scale}")
            if min(lr.shape[:2]) < self.patch:
                small.append(name)
                continue
            hr_kept.append(hr)
            lr_kept.append(lr)
        if not lr_kept:
            raise TinySRError(
                f"all {len(pairs)} images are smaller than the LR patch {self.patch}x{self.patch}; lower --patch"
            )
        if small:
            warnings.warn(
                f"skipped {len(small)} of {len(pairs)} images smaller than the LR patch "
                f"{self.patch}x{self.patch}: {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}",
                stacklevel=3,
            )
        return hr_kept, lr_kept

    def __len__(self) -> int:
        """The number of usable images."""
        return len(self._lr)

    def _draw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Image index, LR top row, LR left column and dihedral code of each crop of one batch."""
        rng, b = self.generator, self.batch_size
        image = rng.integers(0, len(self._lr), size=b)
        y = rng.integers(0, self._y_end[image])
        x = rng.integers(0, self._x_end[image])
        code = rng.integers(0, 8, size=b) if self.augment else np.zeros(b, dtype=np.int64)
        return image, y, x, code

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, hr): float32 NCHW RGB 0..255, shapes (B, 3, p, p) and (B, 3, p*s, p*s)."""
        p, s = self.patch, self.scale
        image, y, x, code = self._draw()
        channels = self._lr[0].shape[2]
        # One pass per crop: slice (a view), transform (a view), HWC -> CHW (a view), and numpy's assignment copies
        # and converts uint8 -> float32 straight into the batch tensor's memory.
        lr_batch = torch.empty((self.batch_size, channels, p, p), dtype=torch.float32)
        hr_batch = torch.empty((self.batch_size, channels, p * s, p * s), dtype=torch.float32)
        lr_out, hr_out = lr_batch.numpy(), hr_batch.numpy()
        for i, (k, yi, xi, c) in enumerate(zip(image.tolist(), y.tolist(), x.tolist(), code.tolist())):
            lr_out[i] = dihedral(self._lr[k][yi : yi + p, xi : xi + p], c).transpose(2, 0, 1)
            hr_out[i] = dihedral(self._hr[k][yi * s : (yi + p) * s, xi * s : (xi + p) * s], c).transpose(2, 0, 1)
        self.batches_drawn += 1
        return lr_batch, hr_batch

    def state_dict(self) -> dict:
        """The generator's bit-generator state and the batch counter: enough to resume the exact batch sequence."""
        return {"bit_generator": self.generator.bit_generator.state, "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output (sets the state of the generator this sampler was given)."""
        self.generator.bit_generator.state = state["bit_generator"]
        self.batches_drawn = int(state["batches_drawn"])
