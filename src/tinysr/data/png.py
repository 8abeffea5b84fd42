"""A PNG writer that streams rows and deflates strips of them on every core: no second copy of the image in memory.

Hand-rolled because Pillow's `Image.fromarray(...).save(...)` copies the whole array into an image first, which
for an 8000x8000 x2 upscale (16000x16000 RGB, 768 MB) adds about 1 GB to the peak, and because its encoder runs
on one core (issue 24: a 3840x2160 save took ~2.6 s of a ~2.8 s open + resize + save script).

Steps (`write_png`), pigz style:
  1. cut the image into strips of rows (`STRIP_BYTES` of filtered scanlines each, whatever the worker count, so the
     file does not depend on the machine);
  2. per strip, in a thread pool (NumPy and CPython's zlib release the GIL): Paeth-filter the rows in NumPy, deflate
     them as raw deflate (no zlib header) with the better of two strategies on a sample, ending in a sync flush (the
     last strip: finish), and take the strip's Adler-32;
  3. in order, write each strip's deflate bytes as an IDAT chunk, the first after the 2-byte zlib header, and the
     strips' Adler-32s combined (`_adler32_combine`) last. The concatenation is one valid zlib stream; at most
     `2 * workers` strips are in flight, so memory stays a few strips above the image.

Format (PNG 1.2): the signature; IHDR (width, height, bit depth 8, colour type 0 grey / 2 RGB / 6 RGBA, no
interlace); IDAT chunks holding one zlib stream of filtered rows; IEND. Any PNG reader decodes it (Pillow in tests).
Convention: HW grey, HWC RGB or HWC RGBA uint8, C order or not.

Choices, measured in one-off sweeps and `benchmarks/png_write.py` on the 2-core AMD EPYC box (CPython's zlib 1.2.13,
single-threaded times). Sizes are ours / Pillow 13's default save of the same pixels (zlib-ng level 6 with its
per-row adaptive filter); "photos" are 51 real photos upscaled x2 with Pillow bicubic (25 BSD100, 14 Set14, 10
Urban100, a 3840x2160 BSD100 mosaic and scikit-image's astronaut at 3840x2160), "outputs" 22 `tiny-1k-x2` upscales
(what `tinysr upscale` writes), and a mean is over images:
  - filter Paeth: at zlib level 3 on 49 photos, Up 1.076x, Average 1.056x, Paeth 1.049x (Sub, the old writer's,
    1.09-1.28x on four of them). The adaptive rule of libpng and Pillow (per row, the filter with the least sum of
    |signed residual|), tried over all five filters, gave sizes within 0.1 % of Paeth's alone on four photos, so
    rows are not filtered five ways to choose.
  - compression: per strip, whichever of zlib level 3 (LZ77) and Z_RLE (runs only) compresses the strip's first
    `SAMPLE_BYTES` smaller. Alone, Paeth at level 1 / 2 / 3 / 4 / 6 gave 1.099 / 1.080 / 1.049 / 1.052 / 1.010x on the
    49 photos for 1 / 1.13 / 1.89 / 1.70 / 6.6x level 1's time, but level 3 reached 1.15x on the smooth astronaut
    (upscaled twice) and 1.13x on outputs; Z_RLE alone was the fastest (0.8x level 1) and 1.064x, but up to 1.64x
    on grey content stored as RGB (Set14 man, bridge), where only LZ77 sees the repeats. Choosing per strip: photos
    1.010x (max 1.081x, Set14 coastguard), outputs 1.000x (max 1.044x), in 0.63x level 3's time (smooth strips
    take Z_RLE); the same choice with level 2 / 1: 1.021 / 1.026x but max 1.109 / 1.168x, for 0.78 / 0.75x the time.
    Z_FILTERED equals the default strategy below level 4.
  - a 32 KB sample: 16 / 32 / 64 / 128 KB gave 1.008 / 1.007 / 1.006 / 1.006x for 1.00 / 1.05 / 1.17 / 1.38x the time.
  - strips of 512 KB: each loses the previous strip's 32 KB of history and ends a block, 0.2 % of size against one
    stream (0.1 % at 1 MB, 0.4 % at 256 KB); a BSD100 x2 image (1.9 MB) still makes 4 strips for 2 cores.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

from tinysr.cpu import cores

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type
STRIP_BYTES = 512 << 10  # filtered bytes deflated per task (see the module docstring for the measurement)
BLOCK_VALUES = 1 << 17  # values filtered per NumPy step, so that its int16 temporaries (256 KB) stay in cache
PAETH = 4  # PNG filter type 4
LEVEL = 3  # zlib level of the LZ77 strategy (see the module docstring)
STRATEGIES = ((LEVEL, zlib.Z_DEFAULT_STRATEGY), (LEVEL, zlib.Z_RLE))  # tried per strip; ties go to the first
SAMPLE_BYTES = 32 << 10  # the head of a strip that both strategies compress to choose one
ADLER_BASE = 65521


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _paeth_block(rows: np.ndarray, above: np.ndarray | None, out: np.ndarray) -> None:
    """Paeth residuals of `rows` (n, W, C) uint8 into `out` (n, 1 + W*C) uint8, filter byte included.

    PNG's predictor from a = left, b = above, c = above-left (raw bytes, 0 outside the image) is whichever of a, b, c
    is nearest to p = a + b - c, ties in that order. It reads raw bytes only, so whole rows are computed at once:
      1. one flat int16 copy [C zeros, the row above, the rows], in which a, b, c are contiguous slices;
      2. the distances |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|;
      3. predictor - c = (a - c) where a wins, (b - c) where b wins, 0 where c wins, by multiplying with the masks
         (np.where / np.copyto with a mask ran 3-4x slower on a 4K frame: 0.15 / 0.12 s against 0.04 s);
      4. each row's first pixel, which step 1 gave the row before's tail as a and c, redone with a = c = 0 (b wins).
    """
    n, width, channels = rows.shape
    length, count = width * channels, n * width * channels
    raw = np.empty(channels + (n + 1) * length, np.int16)
    raw[:channels] = 0
    raw[channels:channels + length] = 0 if above is None else above
    raw[channels + length:].reshape(n, width, channels)[...] = rows
    x, a = raw[channels + length:], raw[length:length + count]
    b, c = raw[channels:channels + count], raw[:count]
    a_c, b_c = a - c, b - c
    pa, pb, pc = np.abs(b_c), np.abs(a_c), a_c + b_c
    np.abs(pc, out=pc)
    chosen = np.multiply(b_c, pb <= pc)  # b - c or 0: the better of b and c
    a_wins = pa <= np.minimum(pb, pc, out=pb)
    np.subtract(a_c, chosen, out=a_c)
    a_c *= a_wins
    chosen += a_c  # now a - c where a wins
    chosen += c  # the predictor
    out[:, 0] = PAETH
    np.subtract(x.reshape(n, length), chosen.reshape(n, length), out=out[:, 1:], casting="unsafe")
    np.subtract(rows[:, 0], b.reshape(n, length)[:, :channels], out=out[:, 1:1 + channels], casting="unsafe")


def _filtered(pixels: np.ndarray, top: int, bottom: int) -> np.ndarray:
    """Rows top..bottom of `pixels` (H, W, C) uint8 as Paeth-filtered PNG scanlines, (rows, 1 + W*C) uint8."""
    _, width, channels = pixels.shape
    out = np.empty((bottom - top, 1 + width * channels), np.uint8)
    step = max(1, BLOCK_VALUES // (width * channels))
    for start in range(top, bottom, step):
        stop = min(start + step, bottom)
        above = pixels[start - 1].reshape(-1) if start else None
        _paeth_block(pixels[start:stop], above, out[start - top:stop - top])
    return out


def _deflate(data: np.ndarray, last: bool) -> bytes:
    """Raw deflate of the bytes `data`, ending byte-aligned (a sync flush; finish if `last`), by whichever of
    `STRATEGIES` makes the smaller output of its first `SAMPLE_BYTES` (the others' work on the sample is dropped)."""
    head, rest = data[:SAMPLE_BYTES], data[SAMPLE_BYTES:]
    trials = []
    for level, strategy in STRATEGIES:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)
        trials.append((compressor.compress(head) + compressor.flush(zlib.Z_SYNC_FLUSH), compressor))
    start, compressor = min(trials, key=lambda trial: len(trial[0]))
    if not rest.size and not last:
        return start  # already ends in a sync flush; a second one would add an empty block
    return start + compressor.compress(rest) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _deflate_strip(pixels: np.ndarray, top: int, bottom: int, last: bool) -> tuple[bytes, int, int]:
    """One task: rows top..bottom filtered and deflated, with the Adler-32 and the length of the filtered bytes."""
    scanlines = _filtered(pixels, top, bottom).reshape(-1)
    return _deflate(scanlines, last), zlib.adler32(scanlines), scanlines.size


def _adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """The Adler-32 of a + b from those of a and b and b's length (zlib's adler32_combine).

    Adler-32 is (B << 16) | A with A = 1 + sum of bytes and B = sum of the A after each byte, both mod 65521; for
    a + b: A = A1 + A2 - 1 and B = B1 + B2 + len(b) * (A1 - 1).
    """
    sum1 = adler1 & 0xFFFF
    sum2 = (adler1 >> 16) + (adler2 >> 16) + length2 * (sum1 - 1)
    return (sum2 % ADLER_BASE) << 16 | (sum1 + (adler2 & 0xFFFF) - 1) % ADLER_BASE


def _zlib_header() -> bytes:
    """CMF (deflate, 32 KB window) and FLG (the level class zlib writes for LEVEL, and the check bits)."""
    flags = (0 if LEVEL < 2 else 1 if LEVEL < 6 else 2 if LEVEL == 6 else 3) << 6
    flags += 31 - (0x78 << 8 | flags) % 31
    return bytes([0x78, flags])


def _strips(pixels: np.ndarray, workers: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (deflate bytes, Adler-32, length) per strip in order, computing up to 2 * workers strips ahead."""
    height, width, channels = pixels.shape
    step = max(1, STRIP_BYTES // (1 + width * channels))
    bounds = [(top, min(top + step, height)) for top in range(0, height, step)]
    if workers <= 1 or len(bounds) == 1:
        for top, bottom in bounds:
            yield _deflate_strip(pixels, top, bottom, bottom == height)
        return
    with ThreadPoolExecutor(min(workers, len(bounds)), thread_name_prefix="tinysr-png") as pool:
        pending: deque[Future] = deque()
        for top, bottom in bounds:
            pending.append(pool.submit(_deflate_strip, pixels, top, bottom, bottom == height))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_png(f: BinaryIO, img: np.ndarray, *, workers: int | None = None) -> None:
    """Write `img` (HW, HWx3 or HWx4 uint8, any strides) to the binary file `f` as an 8-bit PNG.

    `workers` threads deflate strips of rows (default: `cores()`); the file's bytes do not depend on it.
    """
    pixels = img[:, :, None] if img.ndim == 2 else img
    if img.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in COLOUR_TYPE or 0 in pixels.shape:
        raise ValueError(f"write_png takes HW, HWx3 or HWx4 uint8 with rows and columns, not {img.dtype} {img.shape}")
    height, width, channels = pixels.shape
    f.write(SIGNATURE)
    f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPE[channels], 0, 0, 0)))
    adler, header = 1, _zlib_header()
    for data, strip_adler, length in _strips(pixels, workers or cores()):
        f.write(_chunk(b"IDAT", header + data))  # one IDAT per strip, the first with the zlib header
        adler, header = _adler32_combine(adler, strip_adler, length), b""
    f.write(_chunk(b"IDAT", struct.pack(">I", adler)))  # the zlib trailer: 12 bytes more as its own chunk
    f.write(_chunk(b"IEND", b""))
