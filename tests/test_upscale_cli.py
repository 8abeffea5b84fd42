"""`tinysr upscale`: files and folders, grey/alpha/1x1, never overwriting, per-file failures, one-line errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tinysr.models.weights import save_weights
from tinysr.cli import main
from tinysr.data.io import read_image
from tinysr.infer.upscale import upscale

from helpers import random_edsr

MARKER_NAME = "pwned"


@pytest.fixture()
def weights(tmp_path):
    save_weights(tmp_path / "tiny.safetensors", random_edsr("edsr-tiny"))
    return tmp_path / "tiny.safetensors"


@pytest.fixture()
def photos(tmp_path, data_dir):
    """in/a.png (RGB), in/sub/b.png (grey, mode L), in/sub/c.png (RGBA), in/one.png (1x1)."""
    rgb = read_image(data_dir / "Set5" / "head.png")[0][:24, :30]
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "sub" / "b.png")
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (24, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(folder / "sub" / "c.png")
    Image.fromarray(rgb[:1, :1]).save(folder / "one.png")
    return folder


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_folder_keeps_relative_paths_grey_alpha_and_1x1(weights, photos, tmp_path, capsys):
    code, out, err = run(["upscale", "--model", weights, photos, "-o", tmp_path / "out", "--tile", 8], capsys)
    assert code == 0, err
    assert "upscaled 4 of 4 images x2" in out
    model = random_edsr("edsr-tiny")
    rgb = np.asarray(Image.open(photos / "a.png"))
    a = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert a.shape == (48, 60, 3) and np.abs(a.astype(int) - upscale(rgb, model)).max() <= 1
    b = Image.open(tmp_path / "out" / "sub" / "b.png")
    assert b.mode == "L" and b.size == (60, 48)
    c = np.asarray(Image.open(tmp_path / "out" / "sub" / "c.png"))
    assert c.shape == (48, 60, 4)
    assert np.array_equal(c[:, :, 3], upscale(np.asarray(Image.open(photos / "sub" / "c.png")), model)[:, :, 3])
    assert Image.open(tmp_path / "out" / "one.png").size == (2, 2)


def test_single_file_self_ensemble_and_scale_check(weights, photos, tmp_path, capsys):
    code, _, err = run(["upscale", "--model", weights, "--scale", 2, "--self-ensemble", photos / "a.png",
                        "-o", tmp_path / "out"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_failures_are_counted_and_named_others_still_run(weights, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, out, err = run(["upscale", "--model", weights, photos, tmp_path / "missing.png", "-o", tmp_path / "out"],
                         capsys)
    assert code == 1
    assert "upscaled 4 of 5 images" in out
    lines = err.strip().splitlines()
    assert any(line.startswith("tinysr: failed: ") and "broken.png: cannot read image" in line for line in lines)
    assert any("missing.png: no such file or folder" in line for line in lines)
    assert lines[-1] == "tinysr: 2 failure(s)"
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "broken.png").exists()


def test_never_overwrites_inputs_and_outputs_only_with_force(weights, photos, tmp_path, capsys):
    before = (photos / "a.png").read_bytes()
    code, _, err = run(["upscale", "--model", weights, photos / "a.png", "-o", photos], capsys)
    assert code == 1 and "is an input image; refusing to overwrite it" in err
    assert (photos / "a.png").read_bytes() == before
    out = tmp_path / "out"
    assert run(["upscale", "--model", weights, photos / "a.png", "-o", out], capsys)[0] == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    code, _, err = run(["upscale", "--model", weights, photos / "a.png", "-o", out], capsys)
    assert code == 1 and "a.png: exists; pass --force to overwrite" in err
    assert (out / "a.png").stat().st_mtime_ns == stamp
    assert run(["upscale", "--model", weights, "--force", photos / "a.png", "-o", out], capsys)[0] == 0


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_code_running_pickle_is_refused_and_not_run(photos, tmp_path, capsys, protocol):
    marker = tmp_path / MARKER_NAME
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"config": {}, "model": _Evil(str(marker))}, f, protocol=protocol)
    code, _, err = run(["upscale", "--model", evil, photos, "-o", tmp_path / "out"], capsys)
    assert code == 2 and not marker.exists()
    # one line (torch's protocol warning silenced, its paragraph cut to what it found)
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"tinysr: error: {evil}: refused to load a pickle that would run code")
    if protocol == 2:
        module = os.system.__module__
        assert err.strip().endswith(f"(Trying to load unsupported GLOBAL {module}.system whose module {module} is "
                                    "blocked.)")


@pytest.mark.parametrize(("case", "message"), [
    ("unknown", "unknown model 'no-such-model': give a weights file, a run folder, or a bundled model"),
    ("scale", "the model is x2, but x3 was requested"),
    ("out-is-file", "exists and is not a folder"),
    ("bad-tile", "argument --tile: must be >= 1, got 0"),
])
def test_one_line_errors(weights, photos, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    argv = ["upscale", "--model", weights, photos / "a.png", "-o", out]
    if case == "unknown":
        argv[2] = "no-such-model"
    elif case == "scale":
        argv += ["--scale", 3]
    elif case == "out-is-file":
        out.write_bytes(b"a file")
    else:
        argv += ["--tile", 0]
    if case == "bad-tile":  # argparse's usage error: also one line, exit 2
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err == f"tinysr upscale: error: {message}\n"
        return
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("tinysr: error: ") and message in err and len(err.strip().splitlines()) == 1
    if case == "unknown":  # the families are offered too
        assert err.rstrip().endswith("or per file: auto, auto-5k")


def test_engine_option_picks_the_path_and_refuses_what_cannot_run(weights, photos, tmp_path, capsys):
    pytest.importorskip("numba")
    outputs = {}
    for engine in ("auto", "torch", "fused"):
        out_dir = tmp_path / engine
        code, out, err = run(["upscale", "--model", "tiny-1k-x2", photos / "a.png", photos / "one.png",
                              "-o", out_dir, "--engine", engine], capsys)
        assert code == 0, err
        outputs[engine] = np.asarray(Image.open(out_dir / "a.png")).astype(int)
    assert np.abs(outputs["torch"] - outputs["fused"]).max() <= 1
    assert any(np.array_equal(outputs["auto"], outputs[e]) for e in ("torch", "fused"))
    code, out, err = run(["upscale", "--model", weights, photos, "-o", tmp_path / "no", "--engine", "fused"], capsys)
    assert code != 0 and not (tmp_path / "no").exists()
    assert err.strip() == ("tinysr: error: --engine fused: the fused path needs a Y-only tiny net with a bicubic "
                           "anchor and ReLU (or no) activations, or a compact net")
    code, out, err = run(["upscale", "--model", "tiny-1k-x2", photos / "sub" / "b.png", "-o", tmp_path / "grey",
                          "--engine", "fused"], capsys)
    assert code == 1 and not (tmp_path / "grey" / "b.png").exists()
    assert f"tinysr: failed: {photos / 'sub' / 'b.png'}: the fused path needs RGB input without self-ensemble" in err


def test_o_with_a_file_name_writes_that_file_for_one_input_and_is_refused_for_several(weights, photos, tmp_path,
                                                                                     capsys):
    out = tmp_path / "out.png"
    assert main(["upscale", "--model", str(weights), str(photos / "a.png"), "-o", str(out)]) == 0
    assert out.is_file() and read_image(out)[0].shape == (48, 60, 3)  # a file, not a folder named out.png
    two = tmp_path / "two.png"
    assert main(["upscale", "--model", str(weights), str(photos / "a.png"), str(photos / "one.png"),
                 "-o", str(two)]) == 2
    assert "names a file, which takes exactly one input file" in capsys.readouterr().err and not two.exists()
    assert main(["upscale", "--model", str(weights), str(photos), "-o", str(two)]) == 2  # a folder is several
    assert not two.exists()


def test_a_missing_input_is_an_error_and_creates_no_output_folder(weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["upscale", "--model", str(weights), str(tmp_path / "nope.png"), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"tinysr: error: {tmp_path / 'nope.png'}: no such file or folder"
    assert not out.exists()


def test_non_image_files_in_a_folder_are_reported(weights, photos, tmp_path, capsys):
    (photos / "notes.txt").write_text("not an image")
    assert main(["upscale", "--model", str(weights), str(photos), "-o", str(tmp_path / "out")]) == 0
    assert "tinysr: warning: skipped 1 non-image file: notes.txt" in capsys.readouterr().err


def test_a_16_bit_png_is_upscaled_with_a_warning(weights, tmp_path, capsys):
    deep = (np.arange(24 * 30, dtype=np.uint16).reshape(24, 30) * 90).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert main(["upscale", "--model", str(weights), str(tmp_path / "deep.png"), "-o", str(tmp_path / "o")]) == 0
    assert f"tinysr: warning: {tmp_path / 'deep.png'}: 16-bit reduced to 8-bit" in capsys.readouterr().err


def test_max_pixels_is_an_option_of_upscale(weights, photos, tmp_path, capsys):
    argv = ["upscale", "--model", str(weights), str(photos / "a.png"), "-o", str(tmp_path / "o")]
    assert main([*argv, "--max-pixels", "100"]) == 1  # 24x30 = 720 pixels, over the limit of 100
    err = capsys.readouterr().err
    assert "a.png" in err and "--max-pixels" in err
    assert main([*argv, "--max-pixels", "1000"]) == 0


def test_a_video_goes_through_the_same_command(tmp_path, capsys):
    from test_video import ffmpeg, sources

    from tinysr.video.probe import probe_video

    clip = tmp_path / "clip.mp4"
    ffmpeg(*sources(1), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    assert main(["upscale", "--model", "tiny-1k-x2", str(clip), "-o", str(tmp_path / "big.mp4")]) == 0
    src, out = probe_video(clip), probe_video(tmp_path / "big.mp4")
    assert (out.width, out.height, len(out.pts)) == (2 * src.width, 2 * src.height, len(src.pts))
    assert len(src.pts) == 25
    assert main(["upscale", "--model", "tiny-1k-x2", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "folder")]) == 0
    assert len(probe_video(tmp_path / "folder" / "clip.mp4").pts) == len(src.pts)
    assert "upscaled 1 of 1 files x2" in capsys.readouterr().out


def test_sigterm_during_an_upscale_leaves_no_partial_file(tmp_path):
    """SIGTERM is Ctrl-C for every command: the write in progress is removed, nothing half-written stays. The signal
    is sent while the output's temporary file exists, i.e. in the middle of writing it."""
    import signal
    import subprocess
    import sys
    import time

    big = np.random.default_rng(0).integers(0, 256, (1600, 1600, 3), dtype=np.uint8)  # noise: a slow PNG to write
    Image.fromarray(big).save(tmp_path / "big.png", compress_level=1)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tinysr", "upscale", "--model", "tiny-1k-x2", str(tmp_path / "big.png"),
                             "-o", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".big.png.*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, "the write never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "tinysr: interrupted"
    assert list(out.iterdir()) == []  # neither the temporary file nor a half image


def test_the_next_image_computes_while_this_one_is_written(photos, tmp_path, capsys, monkeypatch):
    """Reading and computing overlap with writing: a.png's write waits until the next image's upscale has started on
    the worker thread (without the overlap it would wait forever: the 20 s timeout fails the test). The files are
    one-at-a-time run's, byte for byte."""
    import threading

    import tinysr.cli.upscale as cli_upscale

    started, real_upscale, real_write = threading.Event(), cli_upscale.upscale_loaded, cli_upscale.write_job
    computed_on, overlapped = [], []

    def upscale_loaded(loaded, *args, **kwargs):
        computed_on.append(threading.current_thread().name)
        if len(computed_on) == 2:
            started.set()
        return real_upscale(loaded, *args, **kwargs)

    def write_job(job, sr, args):
        if job.src.name == "a.png":
            overlapped.append(started.wait(timeout=20))
        return real_write(job, sr, args)

    monkeypatch.setattr(cli_upscale, "upscale_loaded", upscale_loaded)
    monkeypatch.setattr(cli_upscale, "write_job", write_job)
    assert run(["upscale", "--model", "tiny-1k-x2", photos, "-o", tmp_path / "piped"], capsys)[0] == 0
    assert overlapped == [True] and all(name.startswith("tinysr-upscale") for name in computed_on)
    monkeypatch.undo()
    monkeypatch.setattr(cli_upscale.Pipeline, "_start_next", lambda self, i: None)  # one image at a time
    assert run(["upscale", "--model", "tiny-1k-x2", photos, "-o", tmp_path / "plain"], capsys)[0] == 0
    for path in sorted((tmp_path / "plain").rglob("*.png")):
        assert path.read_bytes() == (tmp_path / "piped" / path.relative_to(tmp_path / "plain")).read_bytes()


def test_without_the_video_extra_a_clip_names_it_and_a_folder_s_images_still_run(photos, tmp_path, capsys,
                                                                                  monkeypatch):
    """Without PyAV (the [video] extra) a clip given alone is one line naming the extra (not "neither an image nor
    a video"); in a folder, the images still run and a note names the extra for the videos it skips."""
    import tinysr.video.probe as probe
    from tinysr.errors import TinySRError

    def no_av():
        raise TinySRError("video needs PyAV: pip install 'tinysr[video]' (av)")

    monkeypatch.setattr(probe, "_av", no_av)
    clip = photos / "clip.mp4"
    clip.write_bytes(b"\0" * 64)
    code, _, err = run(["upscale", "--model", "tiny-1k-x2", clip, "-o", tmp_path / "one"], capsys)
    assert code == 2 and err.strip() == f"tinysr: error: {clip}: video needs PyAV: pip install 'tinysr[video]' (av)"
    code, out, err = run(["upscale", "--model", "tiny-1k-x2", photos, "-o", tmp_path / "all"], capsys)
    assert code == 0 and "upscaled 4 of 4 images" in out
    assert f"tinysr: warning: {photos}: its videos are skipped: video needs PyAV" in err
