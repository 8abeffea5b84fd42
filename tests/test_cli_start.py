"""The command starts light: `--help`, `VERB --help`, usage errors, unknown models and missing files import neither
numpy, Numba, torch nor Pillow (`python -X importtime`), and each error is its one exact line with exit status 2.

Speed itself is measured by benchmarks/cli_start.py, not here. The light pre-checks' wording is kept equal to the
runners' own by tests/test_cli.py (which imports torch to call them).
"""

import subprocess
import sys

import pytest

from tinysr.cli import VERBS
from tinysr.pretrained import list_pretrained

HEAVY = {"numpy", "numba", "torch", "PIL"}
BUNDLED = ", ".join(list_pretrained())
UNKNOWN = "tinysr: error: unknown model '{}': give a weights file, a run folder, or a bundled model (" + BUNDLED + ")"


def run_traced(*argv: str, cwd=None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -X importtime -m tinysr ARGV`: (the result with importtime's lines removed from stderr, the top-level
    packages it imported)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tinysr", *argv], capture_output=True,
                            text=True, timeout=60, cwd=cwd)
    trace = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    packages = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in trace if "cumulative" not in line}
    result.stderr = "".join(f"{line}\n" for line in result.stderr.splitlines() if not line.startswith("import time:"))
    return result, packages


@pytest.mark.parametrize("argv", [["--help"], *([verb, "--help"] for verb in VERBS), ["experiment", "run", "--help"],
                                  ["prepare", "div2k", "--help"]], ids=" ".join)
def test_help_imports_nothing_heavy(argv):
    result, packages = run_traced(*argv)
    assert result.returncode == 0 and result.stdout.startswith("usage: tinysr"), result.stderr
    assert packages & HEAVY == set()
    assert "tinysr" in packages  # the trace is read


#: (argv, the exact error line); run in a folder holding a.png (an image file) and d/ (a folder with one image).
ERRORS = [
    (["upscale", "nosuch.png", "-o", "out"], "tinysr: error: nosuch.png: no such file or folder"),
    (["upscale", "nosuch.png", "gone/", "-o", "out"],
     "tinysr: error: nothing to upscale: nosuch.png: no such file or folder; gone: no such file or folder"),
    (["upscale", "--model", "nosuchmodel", "a.png", "-o", "out"],
     UNKNOWN.format("nosuchmodel") + ", or per file: auto, auto-5k"),
    (["upscale", "--scale", "7", "a.png", "-o", "out"],
     "tinysr upscale: error: argument --scale: invalid choice: 7 (choose from 2, 3, 4)"),
    (["upscale", "--tile", "-1", "a.png", "-o", "out"], "tinysr upscale: error: argument --tile: must be >= 1, got -1"),
    (["eval", "--model", "nosuch", "--data", "d"], UNKNOWN.format("nosuch")),
    (["eval", "--model", "auto", "--data", "d", "missing"], "tinysr: error: missing: image folder not found"),
    (["eval", "--model", "bicubic", "--scale", "2", "--data", "a.png"], "tinysr: error: a.png: not a folder"),
    (["eval", "--model", "bicubic", "--data", "d"], "tinysr: error: --model bicubic needs --scale (a network knows "
                                                    "its own)"),
    (["eval", "--model", "bicubic", "--scale", "2", "--data", "d", "--self-ensemble"],
     "tinysr: error: --self-ensemble needs a network; bicubic has nothing to average"),
    (["eval", "--model", "tiny-1k-x2", "--data", "d", "--lr-data", "missing"],
     "tinysr: error: missing: image folder not found"),
    (["eval", "--model", "tiny-1k-x2", "--data", "d", "d", "--lr-data", "d"],
     "tinysr: error: --lr-data pairs its files with one --data folder, got 2"),
    (["eval", "--model", "bicubic", "--data", "d", "--protocol", "psnr"],
     "tinysr eval: error: argument --protocol: invalid choice: 'psnr' (choose from 'standard', 'study')"),
    (["export", "--model", "nosuch", "out.onnx", "--format", "onnx"], UNKNOWN.format("nosuch")),
    (["encode", "nosuch.png", "--budget", "1000", "-o", "out.jpg"],
     "tinysr: error: nosuch.png: cannot read image (no such file)"),
    (["train", "--init", "nosuch", "--out", "run", "--train-data", "d", "--val-split", "1"], UNKNOWN.format("nosuch")),
    (["train", "--loss", "l2", "--out", "run"],
     "tinysr train: error: argument --loss: invalid choice: 'l2' (choose from 'l1', 'l1-y', 'mse-y')"),
    (["web", "--model", "auto", "--build", "site"], UNKNOWN.format("auto")),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("cli-start")
    (root / "d").mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    Image.new("RGB", (8, 8)).save(root / "d" / "b.png")
    return root


@pytest.mark.parametrize(("argv", "line"), ERRORS, ids=[" ".join(argv) for argv, _ in ERRORS])
def test_errors_come_before_any_heavy_import(workdir, argv, line):
    result, packages = run_traced(*argv, cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert packages & HEAVY == set()
    assert sorted(p.name for p in workdir.iterdir()) == ["a.png", "d"]  # nothing written


def test_a_bad_degradation_is_one_line_before_torch(workdir):
    """The degradation grammar lives in `tinysr.data.degrade`, which imports numpy and Pillow: this error comes
    after them (the light checks first), but still before torch. (Seeing numpy here shows that the trace sees it.)"""
    result, packages = run_traced("eval", "--model", "bicubic", "--scale", "2", "--data", "d", "--degradation",
                                  "bicubic+jpeg101", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["tinysr: error: --degradation: quality 101 in 'jpeg101' is outside 1-100"]
    assert "torch" not in packages and "numpy" in packages
    result, packages = run_traced("eval", "--model", "nosuch", "--data", "d", "--degradation", "lanczos",
                                  cwd=workdir)
    assert result.stderr.splitlines() == [UNKNOWN.format("nosuch")] and packages & HEAVY == set()


def test_names_the_grammar_copies_are_their_owners():
    """`cli.parser` writes a few library names itself, to stay light; they must stay the library's."""
    from tinysr.cli import parser
    from tinysr.data import div2k
    from tinysr.metrics import PROTOCOLS
    from tinysr.train import config

    assert parser.PROTOCOL_NAMES == tuple(PROTOCOLS)
    assert (parser.SCHEDULES, parser.LOSS_NAMES) == (config.SCHEDULES, config.LOSS_NAMES)
    assert (parser.DIV2K_SPLITS, parser.DIV2K_SCALES, parser.DIV2K_BASE_URL) == (
        div2k.SPLITS, div2k.OFFICIAL_SCALES, div2k.OFFICIAL_BASE_URL)


def _helps(parser, path=("tinysr",)) -> dict[str, str]:
    """{command path: its --help text} of a parser and all its sub-parsers."""
    import argparse

    texts = {" ".join(path): parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                texts.update(_helps(sub, (*path, name)))
    return texts


def test_the_parser_of_one_verb_is_the_whole_grammar_for_that_verb():
    """`main` declares only the named verb's options: for that verb (and `tinysr --help`) nothing may differ."""
    from tinysr.cli.parser import build_parser, verb_of

    whole = _helps(build_parser())
    assert set(whole) >= {f"tinysr {verb}" for verb in VERBS} | {"tinysr experiment run", "tinysr prepare div2k"}
    for verb in VERBS:
        part = _helps(build_parser(verbs=[verb]))
        mine = {k: v for k, v in part.items() if k == "tinysr" or k.split()[1] == verb}
        assert mine == {k: v for k, v in whole.items() if k in mine}
        assert "--model" not in part["tinysr upscale" if verb != "upscale" else "tinysr eval"]  # the others: bare
    assert [verb_of(a) for a in (["--help"], ["upscale", "eval"], ["--version", "eval", "x"], [])] == [
        None, "upscale", "eval", None]
