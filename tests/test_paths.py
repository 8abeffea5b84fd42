"""tinysr.paths: a destination that overlaps its source is refused, in one line, before anything is touched."""

import shutil

import pytest

from tinysr.cli import main
from tinysr.errors import TinySRError
from tinysr.paths import overlaps, refuse_overlap
from tinysr.pretrained import pretrained_path
from test_cinic import _fake_cinic


def test_overlaps_same_inside_and_around(tmp_path):
    assert overlaps(tmp_path / "a", tmp_path / "a")
    assert overlaps(tmp_path / "a", tmp_path / "a" / "b")  # destination inside the source
    assert overlaps(tmp_path / "a" / "b", tmp_path / "a")  # source inside the destination
    assert overlaps(tmp_path / "a", tmp_path / "x" / ".." / "a")  # another spelling of the same path
    assert not overlaps(tmp_path / "a", tmp_path / "ab")  # a common prefix of characters is not nesting
    assert not overlaps(tmp_path / "a", tmp_path / "b")


def test_overlaps_follows_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert overlaps(tmp_path / "link", tmp_path / "real" / "out")
    with pytest.raises(TinySRError, match=r"^--out .* overlaps --src .*: refusing to replace a source"):
        refuse_overlap(source=tmp_path / "link", destination=tmp_path / "real" / "out", source_option="--src",
                       destination_option="--out")


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("where", ["same", "parent"])
def test_prepare_cinic_never_replaces_its_source(tmp_path, capsys, where):
    src = tmp_path / "cinic"
    _fake_cinic(src, n_per_class=3)
    (tmp_path / "keep.txt").write_text("the parent's other file")
    before = _tree(tmp_path)
    out = src if where == "same" else tmp_path
    assert main(["prepare", "cinic", "--src", str(src), "--out", str(out), "--per-class", "1", "1", "--hr-size", "8",
                 "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {out} overlaps --src {src}" in err
    assert _tree(tmp_path) == before


def test_export_never_writes_over_its_own_weights(tmp_path, capsys):
    weights = tmp_path / "best.safetensors"
    shutil.copy(pretrained_path("tiny-1k-x2"), weights)
    data = weights.read_bytes()
    assert main(["export", "--model", str(weights), "--format", "numpy", str(weights), "--force"]) == 2
    assert "OUT " in capsys.readouterr().err and weights.read_bytes() == data
    assert main(["export", "--model", str(tmp_path), "--format", "numpy", str(weights), "--force"]) == 2  # run folder
    assert weights.read_bytes() == data


def test_polish_refuses_an_out_inside_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["polish", str(run), "--out", str(run / "polished"), "--force"]) == 2
    assert "--out " in capsys.readouterr().err and _tree(tmp_path) == ["run"]
