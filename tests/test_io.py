"""tinysr.data.io: read_image conversions and failures, write_image round trips."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from tinysr.data.io import IMAGE_SUFFIXES, read_image, write_image
from tinysr.errors import TinySRError


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_lossless_round_trip(tmp_path, suffix):
    img = _rgb()
    write_image(tmp_path / f"a{suffix}", img)
    out, notes = read_image(tmp_path / f"a{suffix}")
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, img)
    assert notes == []


def test_jpeg_round_trip_close(tmp_path):
    img = np.full((16, 16, 3), (200, 30, 90), np.uint8)
    write_image(tmp_path / "a.jpg", img)
    out, notes = read_image(tmp_path / "a.jpg")
    assert out.shape == (16, 16, 3) and notes == []
    assert np.abs(out.astype(int) - img).max() <= 3


def test_suffix_list():
    assert IMAGE_SUFFIXES == (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    img = np.zeros((16, 32, 3), np.uint8)  # landscape, left half dark, right half white
    img[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out, notes = read_image(tmp_path / "r.jpg")
    assert notes == ["EXIF orientation applied"]
    assert out.shape == (32, 16, 3) and out.flags.c_contiguous
    expected = np.rot90(img, k=-1)  # clockwise: the white right half ends at the bottom
    assert np.abs(out.astype(int) - expected).max() <= 8
    assert out[-1, 0, 0] > 240 and out[0, 0, 0] < 15


def test_grey_expanded(tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    Image.fromarray(grey).save(tmp_path / "g.png")
    out, notes = read_image(tmp_path / "g.png")
    assert notes == ["grey expanded to RGB"]
    np.testing.assert_array_equal(out, np.stack([grey] * 3, axis=2))


def test_rgba_alpha_dropped(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, (4, 7, 4), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgba)
    out, notes = read_image(tmp_path / "a.png")
    assert notes == ["alpha dropped"]
    np.testing.assert_array_equal(out, rgba[:, :, :3])
    assert out.flags.c_contiguous


def test_la_grey_with_alpha(tmp_path):
    Image.new("LA", (3, 2), (77, 10)).save(tmp_path / "la.png")
    out, notes = read_image(tmp_path / "la.png")
    assert notes == ["alpha dropped", "grey expanded to RGB"]
    assert (out == 77).all() and out.shape == (2, 3, 3)


def test_palette_with_and_without_transparency(tmp_path):
    im = Image.new("P", (4, 3))
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(tmp_path / "p.png")
    out, notes = read_image(tmp_path / "p.png")
    assert notes == ["palette expanded to RGB"]
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[1, 1]) == (200, 100, 50)

    im.save(tmp_path / "pt.png", transparency=0)
    out, notes = read_image(tmp_path / "pt.png")
    assert notes == ["palette expanded to RGB", "alpha dropped"]
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[1, 1]) == (200, 100, 50)


def test_16bit_grey_png_is_shifted_not_clipped(tmp_path):
    values = np.array([[0, 255, 256, 1000], [32768, 40000, 65280, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out, notes = read_image(tmp_path / "g16.png")
    assert notes == ["16-bit reduced to 8-bit", "grey expanded to RGB"]
    np.testing.assert_array_equal(out[:, :, 0], [[0, 0, 1, 3], [128, 156, 255, 255]])
    np.testing.assert_array_equal(out[:, :, 0], (values >> 8).astype(np.uint8))


def test_16bit_rgb_png_noted(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    values = (np.arange(18, dtype=np.uint16).reshape(2, 3, 3) * 3001 + 255).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in values)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (tmp_path / "rgb16.png").write_bytes(png)
    out, notes = read_image(tmp_path / "rgb16.png")
    assert notes == ["16-bit reduced to 8-bit"]
    np.testing.assert_array_equal(out, (values.astype(np.uint16) >> 8).astype(np.uint8))


def test_cmyk_jpeg_converted(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # pure red in CMYK
    out, notes = read_image(tmp_path / "c.jpg")
    assert notes == ["CMYK converted"]
    assert out.shape == (8, 8, 3)
    assert out[..., 0].min() > 240 and out[..., 1:].max() < 15


def test_truncated_png_raises_naming_file(tmp_path):
    write_image(tmp_path / "full.png", _rgb(64, 64))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(TinySRError, match=r"cut\.png: cannot read image \(") as info:
        read_image(tmp_path / "cut.png")
    assert "\n" not in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("hello, not an image\n")
    with pytest.raises(TinySRError, match=r"notes\.png: cannot read image \(") as info:
        read_image(tmp_path / "notes.png")
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(TinySRError, match=r"nope\.png: cannot read image \(no such file\)"):
        read_image(tmp_path / "nope.png")


def test_decompression_bomb_limit_mentions_option(tmp_path):
    write_image(tmp_path / "big.png", _rgb(10, 12))
    with pytest.raises(TinySRError, match=r"big\.png: .*120 pixels exceeds .* limit of 100.*max_pixels=.*--max-pixels"):
        read_image(tmp_path / "big.png", max_pixels=100)
    out, _ = read_image(tmp_path / "big.png", max_pixels=120)
    assert out.shape == (10, 12, 3)


def test_max_pixels_above_pillow_default_restores_global(tmp_path):
    default = Image.MAX_IMAGE_PIXELS
    write_image(tmp_path / "a.png", _rgb())
    read_image(tmp_path / "a.png", max_pixels=default * 4)
    assert Image.MAX_IMAGE_PIXELS == default


def test_write_grey_and_bad_inputs(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_image(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png")[0][:, :, 1], grey)
    with pytest.raises(TinySRError, match="uint8"):
        write_image(tmp_path / "f.png", grey.astype(np.float32))
    with pytest.raises(TinySRError, match=r"x\.gif: unknown image suffix"):
        write_image(tmp_path / "x.gif", grey)
    with pytest.raises(TinySRError, match="JPEG cannot store alpha"):
        write_image(tmp_path / "a.jpg", np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(TinySRError, match="cannot write image"):
        write_image(tmp_path / "missing_dir" / "a.png", grey)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]  # no temp files left behind


def test_write_replaces_existing_file(tmp_path):
    write_image(tmp_path / "a.png", _rgb(seed=1))
    write_image(tmp_path / "a.png", _rgb(seed=2))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png")[0], _rgb(seed=2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_real_benchmark_files(data_dir):
    bridge, notes = read_image(data_dir / "Set14" / "bridge.png")  # stored as 8-bit L
    assert notes == ["grey expanded to RGB"] and bridge.shape[2] == 3
    assert (bridge[:, :, 0] == bridge[:, :, 2]).all()
    baby, notes = read_image(data_dir / "Set5" / "baby.png")
    assert baby.shape == (512, 512, 3) and notes == []
    urban, notes = read_image(data_dir / "Urban100" / "img_001.webp")  # lossless WebP
    assert urban.shape == (644, 1024, 3) and notes == []


def test_pillow_global_limit_is_respected(tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", _rgb(10, 12))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow itself raises above twice this, in Image.open
    with pytest.raises(TinySRError, match=r"big\.png: cannot read image \(.*120 pixels.*max_pixels=.*--max-pixels"):
        read_image(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # between the limit and twice it: still refused
    with pytest.raises(TinySRError, match=r"120 pixels exceeds the decompression-bomb limit of 100"):
        read_image(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=1000)[0].shape == (10, 12, 3)
    assert Image.MAX_IMAGE_PIXELS == 100
