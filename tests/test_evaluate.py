"""The benchmark protocol is MATLAB-exact: bicubic reproduces the field's published baselines.

The published BSD100 and Urban100 bicubic means (Y, border crop) are the proof that a resize and a protocol match
MATLAB. Set5 is checked to +-0.01: the published 33.66 / 28.42 come from a slightly different copy of the images.
"""

import numpy as np
import pytest

from tinysr.data.folder import decode_all, image_folder
from tinysr.evaluate import bicubic_lr, bicubic_upscaler, evaluate, mod_crop
from tinysr.metrics import PROTOCOLS

PUBLISHED_BICUBIC = [  # (set, scale, mean PSNR at 2 decimals, tolerance)
    ("BSD100", 2, 29.56, 0.005), ("BSD100", 3, 27.21, 0.005), ("BSD100", 4, 25.96, 0.005),
    ("Urban100", 2, 26.88, 0.005), ("Urban100", 3, 24.46, 0.005), ("Urban100", 4, 23.14, 0.005),
    ("Set5", 2, 33.68, 0.015), ("Set5", 4, 28.43, 0.015),
]


def _mean_psnr(data_dir, name, scale):
    image_set = image_folder(data_dir / name)
    images = [(p.stem, img) for p, img in decode_all(image_set, strict=True)]
    report = evaluate(bicubic_upscaler(scale), images, scale=scale, protocol=PROTOCOLS["standard"])
    assert len(report.rows) == len(image_set)
    return report.mean["psnr"]


@pytest.mark.parametrize(("name", "scale", "expected", "tol"), PUBLISHED_BICUBIC)
def test_bicubic_reproduces_published_baselines(data_dir, name, scale, expected, tol):
    assert _mean_psnr(data_dir, name, scale) == pytest.approx(expected, abs=tol)


def test_mod_crop_and_lr_size():
    hr = np.zeros((31, 20, 3), np.uint8)
    assert mod_crop(hr, 3).shape == (30, 18, 3)
    assert bicubic_lr(mod_crop(hr, 3), 3).shape == (10, 6, 3)


def test_an_upscaler_of_the_wrong_size_is_caught():
    with pytest.raises(ValueError, match="expected"):
        evaluate(lambda lr: lr, [("x", np.zeros((8, 8, 3), np.uint8))], scale=2, protocol=PROTOCOLS["study"])


# ---------------------------------------------------------------- degradations and user LR files
def test_eval_under_jpeg_names_the_degradation_and_uses_its_lr(data_dir):
    from tinysr.data.degrade import degrade

    images = [(p.stem, img) for p, img in decode_all(image_folder(data_dir / "Set5"), strict=True)][:2]
    seen = []
    upscaler = bicubic_upscaler(2)
    report = evaluate(lambda lr: seen.append(lr) or upscaler(lr), images, scale=2, protocol=PROTOCOLS["standard"],
                      degradation="bicubic+jpeg50")
    assert report.degradation == "bicubic+jpeg50" and report.to_dict()["degradation"] == "bicubic+jpeg50"
    assert "# degradation: bicubic+jpeg50" in report.to_table()
    assert (seen[0] == degrade(mod_crop(images[0][1], 2), 2, "bicubic+jpeg50")).all()
    clean = evaluate(upscaler, images, scale=2, protocol=PROTOCOLS["standard"])
    assert report.mean["psnr"] < clean.mean["psnr"] - 0.5 and clean.to_dict()["degradation"] == "bicubic"


def test_lr_data_pairs_by_stem_and_names_bad_files(data_dir, tmp_path):
    from tinysr.data.degrade import degrade
    from tinysr.data.io import write_image
    from tinysr.errors import TinySRError

    images = [(p.stem, img) for p, img in decode_all(image_folder(data_dir / "Set5"), strict=True)][:2]
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name, hr in images:
        write_image(lr_dir / f"{name}.png", degrade(mod_crop(hr, 2), 2, "bicubic+jpeg75"))
    fn, proto = bicubic_upscaler(2), PROTOCOLS["standard"]
    mine = evaluate(fn, images, scale=2, protocol=proto, lr_data=lr_dir)
    made = evaluate(fn, images, scale=2, protocol=proto, degradation="bicubic+jpeg75")
    assert mine.mean == made.mean and mine.degradation == f"files in {lr_dir}"
    write_image(lr_dir / f"{images[1][0]}.png", np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(TinySRError, match=r"bird.png: LR size 5x5 is not HR/2 \(144x144\)"):
        evaluate(fn, images, scale=2, protocol=proto, lr_data=lr_dir)
    (lr_dir / f"{images[1][0]}.png").unlink()
    with pytest.raises(TinySRError, match="--lr-data has no LR file for HR image bird"):
        evaluate(fn, images, scale=2, protocol=proto, lr_data=lr_dir)
