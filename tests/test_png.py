"""tinysr.data.png: the streaming PNG writer round-trips every layout through Pillow's reader, strip by strip."""

import io

import numpy as np
import pytest
from PIL import Image

from tinysr.data import png
from tinysr.data.io import read_image


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (13, 9, 3), (4, 33, 4), (1, 1, 3)])
def test_round_trip_through_pillow(shape, monkeypatch):
    monkeypatch.setattr(png, "STRIP_BYTES", 40)  # several strips, so several IDAT chunks and filter restarts
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    buffer = io.BytesIO()
    png.write_png(buffer, img)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        assert im.mode == {2: "L", 3: "RGB", 4: "RGBA"}[img.ndim if img.ndim == 2 else img.shape[2]]
        assert np.array_equal(np.asarray(im), img)


def test_a_strided_view_is_written_as_its_pixels(tmp_path, data_dir):
    photo = read_image(data_dir / "Set5" / "baby.png")[0]
    view = photo[::3, ::2]  # not C-contiguous
    with open(tmp_path / "v.png", "wb") as f:
        png.write_png(f, view)
    assert np.array_equal(read_image(tmp_path / "v.png")[0], view)
    assert (tmp_path / "v.png").stat().st_size < view.nbytes  # the filter and zlib do compress a photo


def test_the_sub_filter_by_hand():
    rows = np.array([[[10, 20, 30], [15, 10, 255]]], np.uint8)
    assert png._filtered(rows) == bytes([1, 10, 20, 30, 5, 246, 225])  # 10-20 = -10 = 246 (mod 256)
