"""`--model auto` (tinysr.delivery.auto): the model follows the file's content, JPEG quality from its tables, lossless
input gives the clean model's exact pixels, and the sender's record is read back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from skimage import data as skdata

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.delivery.auto import (
    AUTO_FAMILIES,
    AUTO_MODELS,
    IDENTITY,
    JPEG_BANDS,
    AutoFamily,
    choose_model,
    describe_choice,
    estimate_jpeg_quality,
    inspect_source,
    network,
    upscale_file,
)
from tinysr.infer.load import bundled_names
from tinysr.delivery.record import Record, parse_record, save_options
from tinysr.infer.upscale import upscale

pytestmark = pytest.mark.usefixtures("one_thread")

CROP = skdata.astronaut()[100:228, 150:278]  # 128 x 128 RGB uint8: face and hair, real JPEG-like content


@pytest.mark.parametrize("scale", sorted(AUTO_MODELS))
def test_auto_models_name_bundled_clean_models(scale):
    clean, _ = AUTO_MODELS[scale]
    assert clean in bundled_names() and network(clean).config.scale == scale


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_jpeg_quality_estimate_within_2(tmp_path, quality):
    Image.fromarray(skdata.astronaut()).save(tmp_path / "a.jpg", quality=quality)
    assert abs(inspect_source(tmp_path / "a.jpg").quality - quality) <= 2


def test_quality_estimate_without_tables_is_none():
    assert estimate_jpeg_quality({}) is None


def test_picks_by_content_not_suffix(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "png.jpg", format="PNG")
    Image.fromarray(CROP).save(tmp_path / "real.jpg", quality=60)
    Image.fromarray(CROP).save(tmp_path / "lossless.webp", lossless=True)
    Image.fromarray(CROP).save(tmp_path / "lossy.webp", quality=60)
    found = {p: inspect_source(tmp_path / p) for p in ("png.jpg", "real.jpg", "lossless.webp", "lossy.webp")}
    assert [(i.format, i.lossy) for i in found.values()] == [
        ("PNG", False), ("JPEG", True), ("WEBP", False), ("WEBP", True)]
    assert found["real.jpg"].quality == 60 and found["png.jpg"].quality is None
    clean, lossy = AUTO_MODELS[2]
    assert choose_model(found["png.jpg"], scale=2) == clean
    expected = lossy if lossy in bundled_names() else clean  # falls back while the JPEG-aware model is not bundled
    assert choose_model(found["real.jpg"], scale=2) == choose_model(found["lossy.webp"], scale=2) == expected


def test_lossless_input_is_bit_identical_to_the_clean_model(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "in.png")
    result = upscale_file(tmp_path / "in.png", tile=48)
    reference = upscale(CROP, network("tiny-1k-x2"), tile=48)
    assert result.model == "tiny-1k-x2" and result.image.shape == (256, 256, 3)
    np.testing.assert_array_equal(result.image, reference)


def test_cli_auto_on_png_equals_the_clean_model(tmp_path, capsys):
    Image.fromarray(CROP).save(tmp_path / "in.png")
    assert main(["upscale", "--model", "auto", str(tmp_path / "in.png"), "-o", str(tmp_path / "auto")]) == 0
    assert main(["upscale", "--model", "tiny-1k-x3", str(tmp_path / "in.png"), "-o", str(tmp_path / "x3")]) == 0
    main(["upscale", "--model", "auto", "--scale", "3", str(tmp_path / "in.png"), "-o", str(tmp_path / "auto3")])
    out = capsys.readouterr().out
    assert "in.png: PNG (lossless) -> tiny-1k-x2" in out and "-> tiny-1k-x3" in out
    auto3 = np.asarray(Image.open(tmp_path / "auto3" / "in.png"))
    np.testing.assert_array_equal(auto3, np.asarray(Image.open(tmp_path / "x3" / "in.png")))
    assert np.asarray(Image.open(tmp_path / "auto" / "in.png")).shape == (256, 256, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_record_round_trips_through_the_file(tmp_path, fmt):
    record = Record(scale=3, width=127, height=125)
    Image.fromarray(CROP[:42, :43]).save(tmp_path / "r", format=fmt, quality=80, **save_options(fmt, record))
    info = inspect_source(tmp_path / "r")
    assert info.record == record and parse_record("tinysr:scale=3;size=127x125") == record
    assert choose_model(info, scale=2) == "tiny-1k-x3"  # the record wins over the caller's scale
    result = upscale_file(tmp_path / "r")
    assert result.image.shape == (125, 127, 3)  # 43 x 42 LR -> 129 x 126, cropped to the recorded size


def test_recorded_scale_1_passes_pixels_through(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "r.jpg", quality=90, **save_options("JPEG", Record(1, 128, 128)))
    result = upscale_file(tmp_path / "r.jpg")
    assert result.model == IDENTITY and result.image.shape == CROP.shape
    assert np.array_equal(result.image, np.asarray(Image.open(tmp_path / "r.jpg")))


@pytest.mark.parametrize("text, why", [
    ("x tinysr:scale=3;size=127x125", "is not exactly a tinysr record"),
    ("tinysr:scale=3;size=127x125\n", "is not exactly a tinysr record"),
    ("tinysr:scale=03;size=127x125", "is not exactly a tinysr record"),
    ("tinysr:scale=8;size=344x336", "scale x8 is not one of x1, x2, x3, x4"),
    ("tinysr:scale=0;size=0x0", "scale x0 is not one of"),
    ("tinysr:scale=3;size=130x125", "an original of 130x125 sent at x3 is 44x42, not this 43x42 image"),
    ("tinysr:scale=1;size=5x5", "an original of 5x5 sent at x1 is 5x5, not this 43x42 image"),
])
def test_a_record_that_does_not_fit_is_ignored_with_why(tmp_path, text, why):
    Image.fromarray(CROP[:42, :43]).save(tmp_path / "r.jpg", quality=80, comment=text.encode("latin-1"))
    info = inspect_source(tmp_path / "r.jpg")
    assert info.record is None and why in info.ignored and info.ignored.startswith("record ignored (")
    assert choose_model(info) == choose_model(inspect_source_without_record(tmp_path, CROP[:42, :43]))
    with pytest.warns(UserWarning, match=r"r\.jpg: record ignored .*; upscaled as a file without one"):
        assert upscale_file(tmp_path / "r.jpg").image.shape == (84, 86, 3)


def inspect_source_without_record(tmp_path, image):
    Image.fromarray(image).save(tmp_path / "plain.jpg", quality=80)
    return inspect_source(tmp_path / "plain.jpg")


def test_an_ordinary_comment_is_no_record_and_no_warning(tmp_path, recwarn):
    Image.fromarray(CROP[:42, :43]).save(tmp_path / "r.jpg", quality=80, comment=b"made with a camera")
    info = inspect_source(tmp_path / "r.jpg")
    assert (info.record, info.ignored) == (None, None)
    upscale_file(tmp_path / "r.jpg")
    assert not recwarn.list


def test_only_a_jpeg_comment_or_an_exif_description_holds_a_record(tmp_path):
    """A PNG text chunk named "comment" is what Pillow calls a comment too, but encode never writes one there."""
    text = PngInfo()
    text.add_text("comment", Record(2, 86, 84).text())
    Image.fromarray(CROP[:42, :43]).save(tmp_path / "r.png", pnginfo=text)
    info = inspect_source(tmp_path / "r.png")
    assert Image.open(tmp_path / "r.png").info["comment"] == Record(2, 86, 84).text()
    assert (info.record, info.ignored) == (None, None) and choose_model(info) == "tiny-1k-x2"


def test_a_recorded_scale_the_family_lacks_is_ignored(tmp_path, monkeypatch):
    only_x2 = AutoFamily("auto", 1000, {2: AUTO_MODELS[2]}, {2: JPEG_BANDS[2]})
    monkeypatch.setitem(AUTO_FAMILIES, "auto", only_x2)
    Image.fromarray(CROP[:42, :43]).save(tmp_path / "r.jpg", quality=80, **save_options("JPEG", Record(3, 127, 125)))
    with pytest.warns(UserWarning, match=r"record ignored \(tinysr:scale=3;size=127x125: --model auto has models "
                                         r"for x2 only\)"):
        result = upscale_file(tmp_path / "r.jpg")
    assert result.image.shape == (84, 86, 3) and result.info.record is None


def test_a_bundled_jpeg_aware_model_plugs_in_by_name(tmp_path, monkeypatch):
    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=50)
    Image.fromarray(CROP).save(tmp_path / "a.png")
    clean, lossy = AUTO_MODELS[4]
    monkeypatch.setattr("tinysr.delivery.auto.bundled_names", lambda: [clean, lossy])
    assert choose_model(inspect_source(tmp_path / "a.jpg"), scale=4) == lossy
    assert choose_model(inspect_source(tmp_path / "a.png"), scale=4) == clean
    monkeypatch.setattr("tinysr.delivery.auto.bundled_names", lambda: [clean])
    info = inspect_source(tmp_path / "a.jpg")
    assert describe_choice(info, choose_model(info, scale=4)).endswith(
        f"a.jpg: JPEG q~50 (lossy) -> {clean} ({lossy} not bundled: the clean model)")


def test_cli_auto_carries_on_past_an_unreadable_file(tmp_path, capsys):
    Image.fromarray(CROP[:32, :32]).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_text("%!PS-Adobe-3.0 EPSF-3.0\n")  # never handed to Ghostscript
    code = main(["upscale", "--model", "auto", str(tmp_path / "bad.jpg"), str(tmp_path / "good.png"),
                 "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "out" / "good.png").exists() and not (tmp_path / "out" / "bad.jpg").exists()
    assert "bad.jpg: cannot read image" in err and "1 failure(s)" in err


@pytest.mark.parametrize("quality, expected", [(30, "tiny-1k-x2-jpeg-low"), (59, "tiny-1k-x2-jpeg-low"),
                                               (60, "tiny-1k-x2-jpeg"), (82, "tiny-1k-x2-jpeg"),
                                               (83, "tiny-1k-x2-jpeg-high"), (94, "tiny-1k-x2-jpeg-high"),
                                               (95, "tiny-1k-x2"), (98, "tiny-1k-x2")])
def test_auto_picks_the_jpeg_quality_band_s_model(tmp_path, quality, expected):
    """Low qualities to the net fine-tuned on q25-45, the middle to the blind JPEG-aware net, high ones to the net
    fine-tuned on q80-95, near-lossless to the clean net (the JPEG-aware nets cost ~0.8 dB on clean input); the
    edges are where the held-out sweep crossed (benchmarks/RESULTS.md)."""
    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=quality)
    info = inspect_source(tmp_path / "a.jpg")
    assert choose_model(info) == expected
    if expected == "tiny-1k-x2":
        assert "near lossless: the clean model" in describe_choice(info, expected)


def test_a_lossy_webp_of_unknown_quality_takes_the_blind_jpeg_aware_model(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "a.webp", quality=60)
    info = inspect_source(tmp_path / "a.webp")
    assert info.quality is None and choose_model(info) == "tiny-1k-x2-jpeg"


def test_auto_is_the_default_model_of_upscale(tmp_path, capsys):
    from tinysr.cli import main

    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=50)
    assert main(["upscale", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "-> tiny-1k-x2-jpeg" in out and "with --model auto" in out


def test_the_api_takes_auto_with_the_source_file(tmp_path, caplog):
    import logging

    import tinysr
    from tinysr.errors import TinySRError

    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=40)
    image = np.asarray(Image.open(tmp_path / "a.jpg"))
    with caplog.at_level(logging.INFO, logger="tinysr"):
        sr = tinysr.upscale(image, "auto", source=tmp_path / "a.jpg")
    assert np.array_equal(sr, upscale_file(tmp_path / "a.jpg").image)
    assert "-> tiny-1k-x2-jpeg-low" in caplog.text
    with pytest.raises(TinySRError, match="model 'auto' needs source="):
        tinysr.upscale(image, "auto")


@pytest.mark.parametrize("family", sorted(AUTO_FAMILIES))
def test_every_model_of_a_family_keeps_its_budget(family):
    """`auto` may only pick <= 1,000-parameter nets and `auto-5k` <= 5,000 (deployed parameters, as bundled)."""
    chosen = AUTO_FAMILIES[family]
    main_models = {name for pair in chosen.models.values() for name in pair if name}
    band_models = {name for bands in chosen.bands.values() for _, name in bands}
    assert main_models <= set(bundled_names())
    bundled = (main_models | band_models) & set(bundled_names())
    for name in bundled:
        assert network(name).n_params <= AUTO_FAMILIES[family].budget, name


def test_auto_5k_gives_the_5k_clean_model_s_exact_pixels_on_lossless_input(tmp_path, capsys):
    Image.fromarray(CROP).save(tmp_path / "in.png")
    result = upscale_file(tmp_path / "in.png", tile=48, family="auto-5k")
    assert result.model == "tiny-5k-x2"
    np.testing.assert_array_equal(result.image, upscale(CROP, network("tiny-5k-x2"), tile=48))
    assert main(["upscale", "--model", "auto-5k", str(tmp_path / "in.png"), "-o", str(tmp_path / "out")]) == 0
    assert "in.png: PNG (lossless) -> tiny-5k-x2" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "in.png")),
                                  upscale(CROP, network("tiny-5k-x2")))


def test_auto_5k_picks_the_5k_band_nets_at_x4(tmp_path):
    """The x4 bands of auto-5k (held-out sweep: clean from q95, high from q80, blind from q58, low below)."""
    picked = {}
    for q in (30, 57, 58, 79, 80, 94, 95):
        Image.fromarray(CROP).save(tmp_path / f"q{q}.jpg", quality=q)
        info = inspect_source(tmp_path / f"q{q}.jpg")
        picked[q] = choose_model(info, scale=4, family="auto-5k")
        assert choose_model(info, scale=4).startswith("tiny-1k-x4")  # auto keeps to the 1k nets
    assert picked == {30: "tiny-5k-x4-jpeg-low", 57: "tiny-5k-x4-jpeg-low", 58: "tiny-5k-x4-jpeg",
                      79: "tiny-5k-x4-jpeg", 80: "tiny-5k-x4-jpeg-high", 94: "tiny-5k-x4-jpeg-high",
                      95: "tiny-5k-x4"}
    Image.fromarray(CROP).save(tmp_path / "a.png")
    assert choose_model(inspect_source(tmp_path / "a.png"), scale=4, family="auto-5k") == "tiny-5k-x4"


def test_auto_5k_keeps_the_1k_nets_where_it_has_no_5k_net(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=50)
    info = inspect_source(tmp_path / "a.jpg")
    assert choose_model(info, scale=3, family="auto-5k") == "tiny-1k-x3"


def test_an_unknown_family_is_a_one_line_error(tmp_path):
    Image.fromarray(CROP).save(tmp_path / "a.png")
    with pytest.raises(TinySRError, match="no model family 'auto-9k': choose auto, auto-5k"):
        choose_model(inspect_source(tmp_path / "a.png"), family="auto-9k")


def test_the_torch_free_parser_offers_exactly_the_families():
    from tinysr.cli.parser import AUTO_FAMILY_NAMES, build_parser

    assert AUTO_FAMILY_NAMES == tuple(AUTO_FAMILIES)
    args = build_parser().parse_args(["encode", "x.png", "--budget", "9", "-o", "x.jpg", "--receiver", "auto-5k"])
    assert args.receiver == "auto-5k"


@pytest.mark.parametrize("quality, expected", [(30, "tiny-5k-x2-jpeg-low"), (57, "tiny-5k-x2-jpeg-low"),
                                               (58, "tiny-5k-x2-jpeg"), (81, "tiny-5k-x2-jpeg"),
                                               (82, "tiny-5k-x2-jpeg-high"), (95, "tiny-5k-x2")])
def test_auto_5k_picks_its_own_band_s_model(tmp_path, quality, expected):
    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=quality)
    assert choose_model(inspect_source(tmp_path / "a.jpg"), family="auto-5k") == expected


@pytest.mark.parametrize("quality, expected", [(59, "tiny-1k-x4-jpeg-low"), (60, "tiny-1k-x4-jpeg"),
                                               (80, "tiny-1k-x4-jpeg-high"), (93, "tiny-1k-x4-jpeg-high"),
                                               (94, "tiny-1k-x4")])
def test_x4_bands_of_auto_are_the_1k_nets(tmp_path, quality, expected):
    Image.fromarray(CROP).save(tmp_path / "a.jpg", quality=quality)
    assert choose_model(inspect_source(tmp_path / "a.jpg"), scale=4) == expected
