"""`PatchSampler`: aligned random HR/LR training patches with dihedral augmentation, from `PairedImages`.

Convention: `next_batch()` returns ``(lr, hr)`` float32 torch tensors in NCHW RGB, range 0..255 (EDSR's input
convention), ``lr`` of shape ``(B, 3, patch, patch)`` and ``hr`` of shape ``(B, 3, patch * scale, patch * scale)``.
The LR crop at (y, x) pairs with the HR crop at (y * scale, x * scale), so ``degrade(hr_patch) == lr_patch`` for a
block-local degradation. All randomness comes from the caller's `np.random.Generator`; `state_dict` captures it,
so a resumed run draws the very same batches.

Per batch the sampler draws, in this order, four vectors of B integers: image index, row, column, dihedral code.
Each crop is then one slice copy per image (B slices are cheap), stacked into one uint8 buffer and converted to
float32 by a single torch call.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from tinysr.data.cache import PairedImages
from tinysr.errors import TinySRError


def dihedral(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/rotations of an HWC patch (a view): rotate by 90 * (code % 4) degrees, then transpose
    rows and columns when code >= 4. code 0 is the identity. Applied with the same code to an LR patch and its HR
    patch, the pair stays aligned."""
    out = np.rot90(patch, code % 4, axes=(0, 1))
    return out.transpose(1, 0, 2) if code >= 4 else out


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
        self._hr, self._lr = self._usable_images(pairs)
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
        lr_batch = np.empty((self.batch_size, p, p, channels), dtype=np.uint8)
        hr_batch = np.empty((self.batch_size, p * s, p * s, channels), dtype=np.uint8)
        for i, (k, yi, xi, c) in enumerate(zip(image.tolist(), y.tolist(), x.tolist(), code.tolist())):
            lr_batch[i] = dihedral(self._lr[k][yi : yi + p, xi : xi + p], c)
            hr_batch[i] = dihedral(self._hr[k][yi * s : (yi + p) * s, xi * s : (xi + p) * s], c)
        self.batches_drawn += 1
        return _to_nchw_float(lr_batch), _to_nchw_float(hr_batch)

    def state_dict(self) -> dict:
        """The generator's bit-generator state and the batch counter: enough to resume the exact batch sequence."""
        return {"bit_generator": self.generator.bit_generator.state, "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output (sets the state of the generator this sampler was given)."""
        self.generator.bit_generator.state = state["bit_generator"]
        self.batches_drawn = int(state["batches_drawn"])


def _to_nchw_float(batch: np.ndarray) -> torch.Tensor:
    """BHWC uint8 numpy → contiguous BCHW float32 tensor (0..255), one conversion copy."""
    nhwc = torch.from_numpy(batch)
    return nhwc.permute(0, 3, 1, 2).to(dtype=torch.float32, memory_format=torch.contiguous_format)
