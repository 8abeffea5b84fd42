"""`DevicePatchSampler`: training patches cropped where the images live (the GPU), by index arithmetic.

Convention: the images come in as HWC RGB uint8 numpy arrays and stay on the device as one flat uint8 tensor.
`next_batch()` returns ``(lr, hr)`` float32 NCHW RGB 0..255 on the device, ``lr`` (b, 3, p, p) and ``hr``
(b, 3, p*s, p*s), where b is this rank's share of the global batch. The LR crop at (y, x) pairs with the HR crop at
(y*s, x*s), and one dihedral code (the 8 flips/rotations, numbered as `tinysr.data.sampler.dihedral`) applies to
both. Same contract as the CPU `PatchSampler`, but a different random stream.

Randomness is counter-based: batch number n is drawn from a `torch.Generator` on the device seeded from
(seed, n), so the state is just n, a resume continues the very same sequence, and no generator state crosses
devices. Each batch is drawn for the GLOBAL batch size and rank r keeps crops [r*b, (r+1)*b): ranks see different
crops, and any number of ranks together sees exactly what one process sees (see `tinysr.train.distributed`).

LR comes either from stored LR images (`lr_images`, e.g. the cache's) or, with ``lr_images=None``, from degrading
the HR crop on the fly with the float-path MATLAB bicubic (`tinysr.resize.imresize_torch`), rounded once like the
`bicubic` degradation. To make a crop's LR equal the whole image's, the HR window carries a margin of `MARGIN` LR
pixels, mirrored (half-sample symmetric, as imresize pads) past the image border, and the margin is cut off after.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from tinysr.errors import TinySRError
from tinysr.resize import imresize_torch

#: LR pixels of context around an on-the-fly crop; the x1/s bicubic reaches 2 LR pixels (+ rounding) outwards.
MARGIN = 3


def batch_seed(seed: int, index: int) -> int:
    """The 63-bit seed of batch `index` of a run seeded `seed` (numpy's SeedSequence mixes the pair)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def dihedral_coords(i: torch.Tensor, j: torch.Tensor, code: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """Source (row, col) in a size x size patch of output pixel (i, j) under `dihedral(patch, code)`: rotate by
    90 * (code % 4) degrees (np.rot90), then transpose when code >= 4. All arguments broadcast."""
    a, b = torch.where(code >= 4, j, i), torch.where(code >= 4, i, j)
    r, last = code % 4, size - 1
    row = torch.where(r == 0, a, torch.where(r == 1, b, torch.where(r == 2, last - a, last - b)))
    col = torch.where(r == 0, b, torch.where(r == 1, last - a, torch.where(r == 2, last - b, a)))
    return row, col


def mirror(coord: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Fold coordinates into 0..length-1 by half-sample symmetric padding (-1 -> 0, length -> length-1)."""
    period = coord.remainder(2 * length)
    return torch.where(period < length, period, 2 * length - 1 - period)


class _FlatImages:
    """HWC uint8 images as one flat device tensor plus per-image offset, height and width (int64 on device)."""

    def __init__(self, images: Sequence[np.ndarray], device: torch.device) -> None:
        sizes = [img.size for img in images]
        self.offset = torch.tensor(np.cumsum([0] + sizes[:-1]), dtype=torch.int64, device=device)
        self.height = torch.tensor([img.shape[0] for img in images], dtype=torch.int64, device=device)
        self.width = torch.tensor([img.shape[1] for img in images], dtype=torch.int64, device=device)
        try:
            self.flat = torch.empty(sum(sizes), dtype=torch.uint8, device=device)
        except torch.OutOfMemoryError:
            raise TinySRError(f"gpu data: {sum(sizes) / 2**30:.1f} GiB of images do not fit on {device}; "
                              "use --no-gpu-data") from None
        start = 0
        for img, n in zip(images, sizes):
            # np.array copies: cache memmaps are read-only, which torch.from_numpy warns about
            self.flat[start : start + n].copy_(torch.from_numpy(np.array(img)).reshape(-1))
            start += n

    def gather(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Pixels at (row, col) of `image` (broadcast index tensors, shape S) -> float32 (S..., 3)."""
        pixel = self.offset[image] + (row * self.width[image] + col) * 3
        return self.flat[pixel.unsqueeze(-1) + torch.arange(3, device=pixel.device)].float()


class DevicePatchSampler:
    """Random aligned (LR, HR) patches cropped on `device`; see the module docstring for the conventions.

    hr_images: HWC RGB uint8, mod-cropped to `scale` here. lr_images: HR / scale each, or None to degrade on the
    fly. batch_size: the GLOBAL batch; rank/world_size pick this process's share (batch_size % world_size == 0).
    """

    def __init__(self, hr_images: Sequence[np.ndarray], lr_images: Sequence[np.ndarray] | None, *, scale: int,
                 patch: int = 48, batch_size: int = 16, augment: bool = True, seed: int,
                 device: str | torch.device, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size or not 0 <= rank < world_size:
            raise TinySRError(f"batch size {batch_size} must split evenly over {world_size} ranks (rank {rank})")
        hr_images = [img[: img.shape[0] - img.shape[0] % scale, : img.shape[1] - img.shape[1] % scale]
                     for img in hr_images]
        _check_images(hr_images, lr_images, scale=scale)
        hr_images, lr_images = _large_enough(hr_images, lr_images, scale=scale, patch=patch)
        self.device = torch.device(device)
        self.scale, self.patch, self.batch_size, self.augment, self.seed = scale, patch, batch_size, augment, seed
        self.rank, self.local = rank, batch_size // world_size
        self.batches_drawn = 0
        self._generator = torch.Generator(device=self.device)
        self._hr = _FlatImages(hr_images, self.device)
        self._lr = _FlatImages(lr_images, self.device) if lr_images is not None else None
        self._lr_height, self._lr_width = self._hr.height // scale, self._hr.width // scale

    def _draw(self) -> tuple[torch.Tensor, ...]:
        """Image, LR top row, LR left column and dihedral code of this rank's crops of the next global batch."""
        g, n, dev = self._generator, self.batch_size, self.device
        g.manual_seed(batch_seed(self.seed, self.batches_drawn))
        image = torch.randint(0, len(self._lr_height), (n,), generator=g, device=dev)
        u = torch.rand((2, n), generator=g, device=dev, dtype=torch.float64)
        y = (u[0] * (self._lr_height[image] - self.patch + 1)).long()
        x = (u[1] * (self._lr_width[image] - self.patch + 1)).long()
        code = torch.randint(0, 8, (n,), generator=g, device=dev) if self.augment else torch.zeros_like(image)
        mine = slice(self.rank * self.local, (self.rank + 1) * self.local)
        return image[mine], y[mine], x[mine], code[mine]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, hr): float32 NCHW RGB 0..255 on the device, this rank's share of the next global batch."""
        image, y, x, code = self._draw()
        self.batches_drawn += 1
        return self.crops(image, y, x, code)

    def crops(self, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor, code: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, hr) crops of images `image` at LR corners (y, x) under dihedral `code`: int64 (b,) on the device."""
        image, y, x, code = (t.view(-1, 1, 1) for t in (image, y, x, code))
        if self._lr is None:
            return self._degraded_pair(image, y, x, code)
        return self._stored(self._lr, image, y, x, code, 1), self._stored(self._hr, image, y, x, code, self.scale)

    def _stored(self, images: _FlatImages, image, y, x, code, factor: int) -> torch.Tensor:
        """The augmented crop of side patch*factor at (y*factor, x*factor), NCHW float32."""
        size = self.patch * factor
        grid = torch.arange(size, device=self.device)
        row, col = dihedral_coords(grid.view(1, -1, 1), grid.view(1, 1, -1), code, size)
        return images.gather(image, y * factor + row, x * factor + col).permute(0, 3, 1, 2).contiguous()

    def _degraded_pair(self, image, y, x, code) -> tuple[torch.Tensor, torch.Tensor]:
        """1. gather the HR window with MARGIN LR pixels around, mirrored at the border; 2. bicubic x1/s and one
        rounding; 3. cut the margins off both; 4. the same dihedral on both."""
        s, p, m = self.scale, self.patch, MARGIN
        grid = torch.arange(-m * s, (p + m) * s, device=self.device)
        height, width = self._hr.height[image], self._hr.width[image]
        row = mirror(y * s + grid.view(1, -1, 1), height)
        col = mirror(x * s + grid.view(1, 1, -1), width)
        window = self._hr.gather(image, row, col).permute(0, 3, 1, 2)
        lr = imresize_torch(window, output_shape=(p + 2 * m, p + 2 * m))
        lr = _round_half_away(lr.clamp(0, 255))[:, :, m : m + p, m : m + p]
        hr = window[:, :, m * s : (m + p) * s, m * s : (m + p) * s]
        return _dihedral(lr, code), _dihedral(hr, code)

    def state_dict(self) -> dict:
        """Counter-based randomness: the batch counter (and the seed, checked on load) is the whole state."""
        return {"seed": self.seed, "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            raise TinySRError(f"sampler state is for seed {state['seed']}, this run has seed {self.seed}")
        self.batches_drawn = int(state["batches_drawn"])


def _dihedral(batch: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Per-sample dihedral transform of a square NCHW batch (code: (N, 1, 1))."""
    n, c, size, _ = batch.shape
    grid = torch.arange(size, device=batch.device)
    row, col = dihedral_coords(grid.view(1, -1, 1), grid.view(1, 1, -1), code, size)
    flat = (row * size + col).view(n, 1, -1).expand(n, c, -1)
    return batch.reshape(n, c, -1).gather(2, flat).view(n, c, size, size)


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's double -> uint8 rounding on non-negative values (torch.round rounds half to even)."""
    return torch.floor(x + 0.5)


def _check_images(hr: list[np.ndarray], lr: Sequence[np.ndarray] | None, *, scale: int) -> None:
    if not hr:
        raise TinySRError("gpu data: no training images")
    if lr is not None and len(lr) != len(hr):
        raise TinySRError(f"gpu data: {len(lr)} LR images for {len(hr)} HR images")
    for k, img in enumerate(hr):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TinySRError(f"gpu data: image {k} must be HWC RGB uint8, got {img.dtype} {img.shape}")
        if lr is not None and lr[k].shape != (img.shape[0] // scale, img.shape[1] // scale, 3):
            raise TinySRError(f"gpu data: LR image {k} {lr[k].shape} is not HR {img.shape} / x{scale}")


def _large_enough(hr: list[np.ndarray], lr: Sequence[np.ndarray] | None, *, scale: int, patch: int) -> tuple:
    """Drop (with one counting warning, as `PatchSampler` does) images whose LR side is below the patch."""
    keep = [k for k, img in enumerate(hr) if min(img.shape[:2]) // scale >= patch]
    if not keep:
        raise TinySRError(f"gpu data: all {len(hr)} images are smaller than the LR patch {patch}x{patch} at "
                          f"x{scale}; lower --patch")
    if len(keep) < len(hr):
        warnings.warn(f"gpu data: skipped {len(hr) - len(keep)} of {len(hr)} images smaller than the LR patch "
                      f"{patch}x{patch}", stacklevel=3)
    return [hr[k] for k in keep], None if lr is None else [lr[k] for k in keep]
