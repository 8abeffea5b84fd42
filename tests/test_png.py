"""tinysr.data.png: the parallel strip writer round-trips every layout through Pillow's reader, its zlib stream is
one valid stream of Paeth scanlines, its bytes do not depend on the worker count, and it stays near Pillow's size."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tinysr.data import png
from tinysr.data.io import read_image


def _encode(img, **kwargs) -> bytes:
    buffer = io.BytesIO()
    png.write_png(buffer, img, **kwargs)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, each CRC checked."""
    assert data[:8] == png.SIGNATURE
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, payload = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + payload)
        chunks.append((kind, payload))
        at += 12 + length
    return chunks


def _paeth_by_the_spec(img: np.ndarray) -> bytes:
    """PNG 1.2 section 6.6, byte by byte in plain Python: the reference for the vectorised filter."""
    pixels = img[:, :, None] if img.ndim == 2 else img
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels).astype(int).tolist()
    out = bytearray()
    for y in range(height):
        out.append(4)
        for i in range(width * channels):
            a = rows[y][i - channels] if i >= channels else 0
            b = rows[y - 1][i] if y else 0
            c = rows[y - 1][i - channels] if y and i >= channels else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out.append((rows[y][i] - predictor) % 256)
    return bytes(out)


SHAPES = [(1, 1), (7, 5), (1, 37), (29, 1), (13, 9, 3), (1, 1, 3), (1, 40, 3), (40, 1, 3), (4, 33, 4), (31, 17, 4)]


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_through_pillow(shape, workers, monkeypatch):
    monkeypatch.setattr(png, "STRIP_BYTES", 40)  # several strips, so several IDAT chunks and compressors
    monkeypatch.setattr(png, "BLOCK_VALUES", 30)  # several filter blocks per strip
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = _encode(img, workers=workers)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == {2: "L", 3: "RGB", 4: "RGBA"}[img.ndim if img.ndim == 2 else img.shape[2]]
        assert (im.width, im.height) == (shape[1], shape[0])
    assert np.array_equal(_decode(data), img)


@pytest.mark.parametrize("shape", [(6, 7), (5, 4, 3), (3, 5, 4)])
def test_the_idat_stream_is_one_zlib_stream_of_paeth_scanlines(shape, monkeypatch):
    monkeypatch.setattr(png, "STRIP_BYTES", 16)
    img = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    chunks = _chunks(_encode(img, workers=2))
    assert [kind for kind, _ in chunks][0] == b"IHDR" and [kind for kind, _ in chunks][-1] == b"IEND"
    idat = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    assert len([kind for kind, _ in chunks if kind == b"IDAT"]) > 3
    expected = _paeth_by_the_spec(img)
    assert zlib.decompress(idat) == expected  # zlib checks the header and the Adler-32 trailer
    assert idat[-4:] == struct.pack(">I", zlib.adler32(expected))


def test_the_paeth_filter_by_hand():
    rows = np.array([[[10, 20, 30], [15, 10, 255]], [[12, 20, 40], [200, 0, 250]]], np.uint8)
    # row 0 (nothing above): first pixel minus b = 0; then a wins (p = a): 15-10, 10-20, 255-30
    # row 1: first pixel minus b (12-10, 20-20, 40-30); then per channel (a, b, c) = (12, 15, 10): p = 17, b wins,
    # 200-15 = 185; (20, 10, 20): p = 10, b wins, 0-10 = 246; (40, 255, 30): p = 265, b wins, 250-255 = 251
    assert png._filtered(rows, 0, 2).tobytes() == bytes([4, 10, 20, 30, 5, 246, 225, 4, 2, 0, 10, 185, 246, 251])
    assert png._filtered(rows, 1, 2).tobytes() == bytes([4, 2, 0, 10, 185, 246, 251])  # a strip sees the row above


def test_the_vectorised_filter_matches_the_spec_on_a_photo(data_dir):
    photo = read_image(data_dir / "Set5" / "bird.png")[0][:40, :50]
    assert png._filtered(photo, 0, 40).tobytes() == _paeth_by_the_spec(photo)


def test_adler32_combine_matches_zlib():
    rng = np.random.default_rng(3)
    for first, second in [(0, 0), (1, 70000), (5000, 1), (65521, 65521), (100000, 300000)]:
        x, y = rng.integers(0, 256, first, np.uint8).tobytes(), np.full(second, 255, np.uint8).tobytes()
        assert png._adler32_combine(zlib.adler32(x), zlib.adler32(y), len(y)) == zlib.adler32(x + y)


def test_workers_do_not_change_the_file(data_dir, monkeypatch):
    monkeypatch.setattr(png, "STRIP_BYTES", 20_000)  # baby.png: 512 rows of 1537 bytes, 40 strips
    photo = read_image(data_dir / "Set5" / "baby.png")[0]
    one, two, five = (_encode(photo, workers=w) for w in (1, 2, 5))
    assert one == two == five
    assert np.array_equal(_decode(two), photo)
    assert len([kind for kind, _ in _chunks(two) if kind == b"IDAT"]) == 41  # 40 strips and the Adler-32


@pytest.mark.parametrize("view", ["step", "transposed", "flipped", "grey column"])
def test_a_strided_view_is_written_as_its_pixels(view, data_dir):
    photo = read_image(data_dir / "Set5" / "baby.png")[0]
    img = {"step": photo[::3, ::2], "transposed": photo.transpose(1, 0, 2), "flipped": photo[::-1, ::-1],
           "grey column": photo[:, 100:101, 1]}[view]
    assert not img.flags.c_contiguous
    data = _encode(img, workers=2)
    assert np.array_equal(_decode(data), img)
    if view != "grey column":
        assert len(data) < img.nbytes * 0.7  # the filter and zlib do compress a photo


def _upscaled(data_dir, name: str) -> np.ndarray:
    """A Set14 photo as RGB, upscaled x2 with Pillow bicubic (the kind of image the writer was tuned on)."""
    lr = Image.open(data_dir / "Set14" / name).convert("RGB")
    return np.asarray(lr.resize((lr.width * 2, lr.height * 2), Image.BICUBIC))


def _raw_deflate(data: np.ndarray, level: int, strategy: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(("name", "winner"), [("man.png", zlib.Z_DEFAULT_STRATEGY), ("lenna.png", zlib.Z_RLE)])
def test_each_strategy_is_chosen_where_it_wins(name, winner, data_dir):
    # man is grey stored as RGB (equal triples: only LZ77 matches see them); lenna x2 is smooth (runs of small
    # residuals: run-length coding wins). Measured on these 200,000 bytes: man 47,368 / 77,653, lenna 83,032 / 69,473.
    data = png._filtered(_upscaled(data_dir, name), 0, 100).reshape(-1)[:200_000]
    whole = {strategy: len(_raw_deflate(data, level, strategy)) for level, strategy in png.STRATEGIES}
    out = png._deflate(data, last=True)
    assert zlib.decompress(out, -15) == data.tobytes()
    assert min(whole, key=whole.get) == winner
    assert len(out) <= 1.02 * whole[winner] < 0.9 * max(whole.values())


@pytest.mark.parametrize("img", [np.zeros((0, 3, 3), np.uint8), np.zeros((2, 2, 2), np.uint8),
                                 np.zeros((2, 2), np.float32), np.zeros(5, np.uint8)])
def test_bad_arrays_are_refused(img):
    with pytest.raises(ValueError, match="write_png takes"):
        _encode(img)


def test_within_ten_percent_of_pillow_on_a_real_upscale(data_dir):
    # lenna x2 (Pillow bicubic): the worst of 49 photos for plain zlib level 3 (1.14x Pillow's default save); the
    # per-strip choice of run-length coding brings it to ~1.0x (Pillow 13 with zlib-ng: 1,408,222 bytes).
    hr = _upscaled(data_dir, "lenna.png")
    buffer = io.BytesIO()
    Image.fromarray(hr).save(buffer, format="PNG")
    ours = _encode(hr)
    assert np.array_equal(_decode(ours), hr)
    assert len(ours) <= 1.10 * len(buffer.getvalue())
