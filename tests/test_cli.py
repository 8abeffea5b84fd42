"""`tinysr eval` end to end, and its one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from tinysr.cli import main


def test_eval_json_on_set5(data_dir, capsys):
    assert main(["eval", "--model", "bicubic", "--data", str(data_dir / "Set5"), "--scale", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "standard" and len(out["images"]) == 5
    assert round(out["mean"]["psnr"], 2) == 33.68
    assert out["mean"]["ssim"] == pytest.approx(0.9305, abs=5e-5)


def test_eval_table_names_the_protocol(data_dir, capsys):
    assert main(["eval", "--model", "bicubic", "--data", str(data_dir / "Set5"), "--scale", "4",
                 "--protocol", "study"]) == 0
    out = capsys.readouterr().out
    assert "protocol study: RGB, no border crop" in out and out.strip().splitlines()[-1].startswith("mean")


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "tinysr", *argv], capture_output=True, text=True, timeout=120)


def _one_line_error(result, *needles):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_gets_one_line_errors(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    from PIL import Image

    Image.new("RGB", (16, 16), (10, 20, 30)).save(good / "a.png")
    png = (good / "a.png").read_bytes()

    notimg = tmp_path / "notimg"
    notimg.mkdir()
    (notimg / "fake.png").write_text("this is not an image")
    _one_line_error(_run("eval", "--model", "bicubic", "--data", str(notimg), "--scale", "2"), "fake.png")

    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "cut.png").write_bytes(png[: len(png) // 2])
    _one_line_error(_run("eval", "--model", "bicubic", "--data", str(trunc), "--scale", "2"), "cut.png")

    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(_run("eval", "--model", "bicubic", "--data", str(empty), "--scale", "2"), str(empty))

    _one_line_error(_run("eval", "--model", "edsr-huge", "--data", str(good), "--scale", "2"), "edsr-huge")
    for bad_scale in ("0", "5"):
        _one_line_error(_run("eval", "--model", "bicubic", "--data", str(good), "--scale", bad_scale), "--scale")


def test_eval_json_carries_the_degradation(data_dir, capsys):
    assert main(["eval", "--model", "bicubic", "--data", str(data_dir / "Set5"), "--scale", "2", "--json",
                 "--degradation", "bicubic+jpeg75"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["degradation"] == "bicubic+jpeg75" and out["protocol"] == "standard"
    assert round(out["mean"]["psnr"], 3) == 31.899


@pytest.mark.parametrize(("argv", "needles"), [
    (["--degradation", "bicubic+jpeg101"], ["--degradation", "quality 101"]),
    (["--degradation", "bicubic+jpeg30-"], ["--degradation", "malformed"]),
    (["--degradation", "lanczos+jpeg75"], ["--degradation", "unknown degradation 'lanczos'"]),
    (["--degradation", "bicubic+tiff9"], ["--degradation", "unknown stage 'tiff9'"]),
    (["--lr-data", "LRDIR"], ["baby.*", "no LR file for HR image baby"]),
    (["--lr-data", "LRDIR", "--degradation", "bicubic"], ["not allowed with argument"]),
])
def test_bad_degradations_and_lr_data_are_one_line_errors(data_dir, tmp_path, argv, needles):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(lr_dir / "other.png")
    argv = [str(lr_dir) if a == "LRDIR" else a for a in argv]
    _one_line_error(_run("eval", "--model", "bicubic", "--data", str(data_dir / "Set5"), "--scale", "2", *argv),
                    *needles)


def test_train_refuses_a_bad_degradation_before_writing(tmp_path):
    result = _run("train", "--degradation", "bicubic+jpeg0", "--out", str(tmp_path / "run"), "--train-data",
                  str(tmp_path), "--val-split", "1")
    _one_line_error(result, "--degradation", "quality 0")
    assert not (tmp_path / "run").exists()


def test_eval_self_ensemble_of_a_bundled_model_is_labelled_and_needs_a_network(data_dir, capsys):
    set5 = str(data_dir / "Set5")
    assert main(["eval", "--model", "tiny-1k-x4", "--data", set5, "--scale", "4", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert main(["eval", "--model", "tiny-1k-x4", "--data", set5, "--scale", "4", "--json", "--self-ensemble"]) == 0
    averaged = json.loads(capsys.readouterr().out)
    assert averaged["model"] == single["model"] + " + self-ensemble (x8)"
    assert averaged["mean"]["psnr"] > single["mean"]["psnr"] + 0.05  # the average of 8 passes is better here
    _one_line_error(_run("eval", "--model", "bicubic", "--data", set5, "--scale", "2", "--self-ensemble"),
                    "--self-ensemble needs a network")


def test_library_warnings_print_as_one_line(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2", "--json"]) == 0
    err = capsys.readouterr().err.strip()
    assert err == "tinysr: warning: skipped 1 non-image file: notes.txt"  # no second line of Python source


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["models", "--json"], ["train", "--help"],
                                  ["upscale", "--help"], ["experiment", "run", "--help"]])
def test_help_and_models_never_import_torch(argv):
    """Laziness is decided once, at dispatch: the grammar (`cli.parser`) and `models` stay torch-free, so the
    command starts at once (timed by benchmarks/cli_start.py, not here)."""
    code = ("import sys\nfrom tinysr.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_every_verb_has_a_runner_with_run():
    import importlib

    from tinysr.cli import VERBS
    from tinysr.cli.parser import build_parser

    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(choices) == set(VERBS)
    for module in VERBS.values():
        assert callable(importlib.import_module(module).run)


def test_export_formats_named_by_the_parser_are_the_library_s():
    from tinysr.cli.parser import EXPORT_FORMATS
    from tinysr.export.formats import EXPORTERS

    assert EXPORT_FORMATS == tuple(EXPORTERS)


def test_no_command_prints_usage_and_one_error_line():
    result = _run()
    assert result.returncode == 2
    assert result.stderr.startswith("usage: tinysr")
    assert result.stderr.strip().splitlines()[-1] == "tinysr: error: name a command (tinysr --help lists them)"


def test_a_closed_pipe_ends_quietly():
    """`tinysr models --json | head`: the reader is gone before the write; no BrokenPipeError traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    result = subprocess.run([sys.executable, "-m", "tinysr", "models", "--json"], stdout=write_end,
                            stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert result.returncode == 0 and result.stderr == ""


def test_sigterm_is_an_interruption_like_ctrl_c(tmp_path):
    """SIGTERM during a long command: one `tinysr: interrupted` line, exit 130, as Ctrl-C."""
    import signal
    import time

    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    code = ("import time, tinysr.cli.eval as e\n"
            "def slow(args):\n    print('ready', flush=True); time.sleep(60)\n"
            "e.run = slow\nfrom tinysr.cli import main\nraise SystemExit(main(['eval', '--model', 'bicubic', "
            f"'--data', {str(tmp_path)!r}, '--scale', '2']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "tinysr: interrupted"


def test_control_characters_in_a_name_cannot_split_the_error_line(tmp_path):
    bad = tmp_path / "evil\ntinysr: error: forged"
    bad.mkdir()
    result = _run("eval", "--model", "bicubic", "--data", str(bad), "--scale", "2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evil\\ntinysr: error: forged" in lines[0]


def test_one_line_escapes_every_control_character():
    from tinysr.errors import one_line

    assert one_line("a\nb\rc\x1b[31md\te é") == "a\\nb\\rc\\x1b[31md\\te é"


def _options(parser, path=("tinysr",)):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action, parser


def test_every_option_has_help_and_shows_its_default():
    from tinysr.cli.parser import build_parser

    options = list(_options(build_parser()))
    assert len(options) > 80
    missing = [f"{cmd} {a.option_strings or a.dest}" for cmd, a, _ in options if not a.help]
    assert missing == []
    for cmd, action, parser in options:
        if action.option_strings and action.default not in (None, False) and not isinstance(action.default, bool):
            assert "(default:" in parser.format_help() or "default" in action.help, (cmd, action.option_strings)
    seed = next(a for cmd, a, _ in options if cmd == "tinysr prepare cinic" and "--seed" in a.option_strings)
    from tinysr.cli.parser import HelpFormatter

    assert HelpFormatter("x")._get_help_string(seed) == "seed of the draw (default: 0)"  # 0 is a value, not off


def test_eval_takes_the_scale_from_the_model(data_dir, capsys):
    set5 = str(data_dir / "Set5")
    assert main(["eval", "--model", "tiny-1k-x4", "--data", set5, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scale"] == 4 and round(out["mean"]["psnr"], 2) == 29.67  # models.json's Set5 figure
    assert main(["eval", "--model", "bicubic", "--data", set5]) == 2
    assert "--model bicubic needs --scale" in capsys.readouterr().err


def test_eval_names_an_image_smaller_than_the_scale(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (1, 40)).save(tmp_path / "thin.png")
    assert main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2"]) == 2
    assert f"{tmp_path / 'thin.png'}: image of size 1x40 is smaller than scale x2" in capsys.readouterr().err


def _eval_json(capsys, *argv) -> dict:
    assert main(["eval", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_auto_measures_the_model_auto_picks_per_image(data_dir, capsys, tmp_path):
    """`--model auto` under a fixed JPEG quality is exactly that band's net; under a range each image gets its own
    band; on clean LR it is the clean net; on LR files each file is inspected as `tinysr upscale` does."""
    from PIL import Image

    from tinysr.data.codecs import parse_codec_stage
    from tinysr.data.degrade import degrade, mod_crop
    from tinysr.data.io import read_image
    from tinysr.delivery.auto import band_model

    set5 = str(data_dir / "Set5")
    auto = _eval_json(capsys, "--model", "auto", "--data", set5, "--degradation", "bicubic+jpeg50")
    low = _eval_json(capsys, "--model", "tiny-1k-x2-jpeg-low", "--data", set5, "--degradation", "bicubic+jpeg50")
    assert auto["mean"] == low["mean"] and {r["model"] for r in auto["images"]} == {"tiny-1k-x2-jpeg-low"}
    assert auto["model"] == "auto (per image)" and auto["degradation"] == "bicubic+jpeg50"
    clean = _eval_json(capsys, "--model", "auto-5k", "--data", set5)
    assert round(clean["mean"]["psnr"], 2) == 36.81 and {r["model"] for r in clean["images"]} == {"tiny-5k-x2"}
    mixed = _eval_json(capsys, "--model", "auto", "--data", set5, "--degradation", "bicubic+jpeg30-95")
    stage = parse_codec_stage("jpeg30-95")
    assert [r["model"] for r in mixed["images"]] == [
        band_model(stage.quality_for(seed=0, image_id=r["image"]), scale=2) for r in mixed["images"]]
    assert len({r["model"] for r in mixed["images"]}) > 1  # the draw spans bands on these five images
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for i, path in enumerate(sorted((data_dir / "Set5").glob("*.png"))):
        lr = degrade(mod_crop(read_image(path)[0], 2), 2)
        if i % 2:
            Image.fromarray(lr).save(lr_dir / f"{path.stem}.jpg", quality=90)
        else:
            Image.fromarray(lr).save(lr_dir / f"{path.stem}.png")
    files = _eval_json(capsys, "--model", "auto", "--data", set5, "--lr-data", str(lr_dir))
    assert [r["model"] for r in files["images"]] == ["tiny-1k-x2", "tiny-1k-x2-jpeg-high"] * 2 + ["tiny-1k-x2"]


def test_light_checks_word_each_error_as_its_runner_does(tmp_path):
    """`cli.checks` reports these before the runner is imported; the runner's own check (still there, reached from
    Python) must say the same line, whichever sees the mistake."""
    import argparse

    from tinysr.cli import checks
    from tinysr.cli import eval as eval_runner
    from tinysr.cli import upscale as upscale_runner
    from tinysr.data.folder import scan_folder
    from tinysr.data.io import read_image
    from tinysr.errors import TinySRError
    from tinysr.infer.load import load_network, resolve_upscaler

    def message(call, *args, **kwargs) -> str:
        with pytest.raises(TinySRError) as caught:
            call(*args, **kwargs)
        return str(caught.value)

    (tmp_path / "a.png").write_bytes(b"")
    missing, a_file = str(tmp_path / "missing"), str(tmp_path / "a.png")
    assert message(checks.check_model, "nosuch") == message(load_network, "nosuch", scale=None)
    assert message(checks.check_model, "nosuch", per_file=("auto", "auto-5k")) == message(
        upscale_runner.prepare, argparse.Namespace(model="nosuch", scale=None, engine="auto"))
    for folder in (missing, a_file):
        assert message(checks.check_folder, folder) == message(scan_folder, folder)
    for image in (missing, str(tmp_path)):
        assert message(checks.check_image_file, image) == message(read_image, image)
    for inputs in ([missing], [missing, a_file + "x/"]):
        args = argparse.Namespace(model="auto", engine="auto", scale=None, inputs=inputs, output=str(tmp_path / "o"))
        assert message(checks.check_inputs, inputs) == message(upscale_runner.run, args)
    for self_ensemble in (True, False):
        args = argparse.Namespace(model="bicubic", scale=None, self_ensemble=self_ensemble, lr_data=None, data=["."],
                                  degradation="bicubic")
        assert message(checks.check_eval, args) == message(resolve_upscaler, "bicubic", scale=None,
                                                           self_ensemble=self_ensemble)
    args = argparse.Namespace(model="auto", lr_data=a_file, data=[".", "."])
    assert message(checks.check_eval, args) == message(eval_runner.run, args)


def test_the_light_checks_copies_of_library_names_are_their_owners():
    from tinysr.cli import checks
    from tinysr.data.io import IMAGE_SUFFIXES
    from tinysr.runfolder import RUN_BEST
    from tinysr.video.upscale import MUXERS

    assert (checks.IMAGE_SUFFIXES, checks.VIDEO_SUFFIXES, checks.RUN_BEST) == (IMAGE_SUFFIXES, tuple(MUXERS), RUN_BEST)


def test_trust_vouches_for_the_files_one_command_names(tmp_path, capsys):
    """--trust covers the --model of its own command line (a file, or a run folder's best weights), nothing else,
    and ends with the command."""
    from helpers import random_edsr
    from tinysr.models.weights import save_weights
    from tinysr.runfolder import RUN_BEST

    def unsigned(path):
        save_weights(path, random_edsr("edsr-tiny", std=0.05))
        data = path.read_bytes()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        del header["__metadata__"]["tinysr_sha256"]
        text = json.dumps(header).encode()
        path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
        return path

    a, b = unsigned(tmp_path / "a.safetensors"), unsigned(tmp_path / "b.safetensors")
    (tmp_path / "run").mkdir()
    unsigned(tmp_path / "run" / RUN_BEST)

    def export(spec, *trust):
        status = main(["export", str(tmp_path / f"{len(list(tmp_path.iterdir()))}.npz"), "--model", spec,
                       "--format", "numpy", *trust])
        return status, capsys.readouterr().err

    status, err = export(str(a), "--trust")
    assert status == 0 and err == f"tinysr: warning: {a}: no sha256 digest; loaded unchecked (--trust)\n"
    assert export(str(tmp_path / "run"), "--trust")[0] == 0
    for spec in (b, a):  # another file, and the same one on a later command line without --trust
        status, err = export(str(spec))
        assert status == 2 and err.startswith(f"tinysr: error: {spec}: no sha256 digest")


@pytest.mark.parametrize(("module", "verb", "extra"), [
    ("torch", "export", "export"), ("torch", "train", "train"), ("matplotlib.pyplot", "report", "train"),
    ("av", "upscale", "video"), ("onnxruntime", "export", "export")])
def test_a_missing_extra_is_one_line_naming_it(module, verb, extra, monkeypatch, capsys):
    """A runner that imports a package of an extra the install lacks ends in one line naming the extra, exit 2."""
    import argparse
    import importlib

    import tinysr.cli as cli
    import tinysr.cli.checks as checks

    def missing(name):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(checks, "check_args", lambda args: None)
    monkeypatch.setattr(importlib, "import_module", missing)  # last: monkeypatch itself imports with it
    assert cli.run_verb(argparse.Namespace(command=verb)) == 2
    top = module.split(".")[0]
    assert capsys.readouterr().err == (f"tinysr: error: tinysr {verb} needs the [{extra}] extra ({module} is not "
                                       f"installed): pip install 'tinysr[{extra}]'\n")
    assert cli.missing_extra("numpy", verb) is None and cli.missing_extra(top, verb) == extra
