"""Issue 25, adversarial cases of `tinysr export` and `tinysr web`: nothing tinysr did not write is deleted or
replaced, every file an export writes is checked before anything is written, and every failure is one line.

A read-only folder is simulated by fault injection (`read_only`): the tests run as root, whom permission bits do
not stop, so every call that would create, rename or write inside the folder fails with EROFS, as on a read-only
mount.
"""

import builtins
import errno
import fcntl
import http.client
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from helpers import random_edsr
from tinysr.cli import main
from tinysr.models import config_to_dict
from tinysr.models.weights import save_weights
from tinysr.web import site
from tinysr.web.server import serve

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tinysr: error: "), err
    return err


def _ok(argv: list[str], capsys) -> str:
    """Run a command that must succeed; its stdout (stderr, where converters print progress, is dropped)."""
    assert main(argv) == 0
    return capsys.readouterr().out


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name -> bytes), to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def read_only(monkeypatch):
    """`read_only(folder)`: from now on, creating, renaming or writing anything inside `folder` fails with EROFS."""

    def install(folder: Path) -> None:
        root = str(folder.resolve())

        def inside(path) -> bool:
            try:
                return os.path.abspath(os.fsdecode(path)).startswith(root)
            except TypeError:  # a file descriptor
                return False

        def refuse(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

        def guard(real, *, writes=lambda *a, **k: True, paths=lambda a: a[:1]):
            def wrapped(*args, **kwargs):
                if writes(*args, **kwargs) and any(inside(p) for p in paths(args)):
                    refuse(paths(args)[0])
                return real(*args, **kwargs)
            return wrapped

        write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT
        monkeypatch.setattr(os, "open", guard(os.open, writes=lambda p, flags, *a, **k: bool(flags & write_flags)))
        for name in ("mkdir", "link", "rename", "replace", "unlink", "rmdir"):
            monkeypatch.setattr(os, name, guard(getattr(os, name), paths=lambda a: a[:2]))
        opener = guard(builtins.open, writes=lambda f, mode="r", *a, **k: any(c in mode for c in "wax+"))
        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(io, "open", opener)

    return install


@pytest.fixture()
def weights(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_weights(path, random_edsr(std=0.05, n_blocks=0, n_feats=4, scale=2))
    return path


# ------------------------------------------------------------------------------ case 1: Core ML --force deletes OUT


def test_coreml_force_onto_the_working_folder_deletes_nothing(tmp_path, monkeypatch, capsys):
    """The issue's command: `cd work && tinysr export --model tiny-1k-x2 --format coreml . --force`."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("mine")
    (work / "sub" / "a.bin").write_bytes(b"\x00\x01")
    before = _tree(work)
    monkeypatch.chdir(work)
    assert main(["export", "--model", "tiny-1k-x2", "--format", "coreml", ".", "--force"]) == 2
    assert "give OUT the suffix .mlpackage" in _error_line(capsys)
    assert _tree(work) == before and sorted(p.name for p in work.iterdir()) == ["keep.txt", "sub"]


def test_coreml_force_replaces_only_a_package_tinysr_wrote(tmp_path, capsys):
    from tinysr.export import destination

    foreign = tmp_path / "other.mlpackage"  # a package of the right name that tinysr did not write
    (foreign / "Data").mkdir(parents=True)
    (foreign / "Manifest.json").write_text("{}")
    before = _tree(foreign)
    assert main(["export", "--model", "tiny-1k-x2", "--format", "coreml", str(foreign), "--force"]) == 2
    assert f"{foreign}: not a package tinysr exported (no {destination.MARKER} inside)" in _error_line(capsys)
    assert _tree(foreign) == before

    ours = tmp_path / "m.mlpackage"
    _ok(["export", "--model", "tiny-1k-x2", "--format", "coreml", str(ours)], capsys)
    assert (ours / destination.MARKER).is_file() and (ours / "Manifest.json").is_file()
    (ours / "stale.txt").write_text("from the first export")
    assert main(["export", "--model", "tiny-1k-x2", "--format", "coreml", str(ours)]) == 2
    assert "m.mlpackage: exists; pass --force" in _error_line(capsys)
    _ok(["export", "--model", "tiny-1k-x2", "--format", "coreml", str(ours), "--force"], capsys)
    assert not (ours / "stale.txt").exists() and (ours / destination.MARKER).is_file()  # replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage", "other.mlpackage"]  # no temporary left


def test_a_killed_exports_stage_is_removed_and_a_live_one_kept(tmp_path, weights, capsys):
    """Stages are unique names beside OUT, created exclusively; the next export removes those no process holds."""
    out = tmp_path / "m.tflite"
    dead, live = tmp_path / ".m.tflite.dead0001.tmp", tmp_path / ".m.tflite.live0001.tmp"
    dead.mkdir()
    (dead / "m.tflite").write_bytes(b"half")
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export holds its stage
    try:
        _ok(["export", "--model", str(weights), "--format", "tflite", str(out)], capsys)
        assert not dead.exists() and live.is_dir()
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.tflite.live0001.tmp", "m.tflite", "tiny.safetensors"]


def test_a_claimed_name_is_never_replaced_without_force(tmp_path, weights, monkeypatch, capsys):
    """Two exports racing for one name: the file that appears while this one runs is kept, and this one fails."""
    from tinysr.export import destination, formats

    out = tmp_path / "m.onnx"
    real_staging = destination.staging

    def staging_then_a_rival(path):
        out.write_bytes(b"the other run's file")
        return real_staging(path)

    monkeypatch.setattr(formats, "staging", staging_then_a_rival)
    assert main(["export", "--model", str(weights), "--format", "onnx", str(out)]) == 2
    assert "m.onnx: exists (written by another process meanwhile)" in _error_line(capsys)
    assert out.read_bytes() == b"the other run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "tiny.safetensors"]


# ------------------------------------------------------------------------------ case 5: ncnn's OUT.bin


def test_ncnn_export_never_overwrites_its_source_model(tmp_path, capsys):
    """The issue's command: `tinysr export --model weights.bin --format ncnn weights.param`."""
    model = random_edsr(std=0.05, n_blocks=0, n_feats=4, scale=2)
    source = tmp_path / "weights.bin"  # tinysr weights in torch's format, under a name ncnn's .bin would take
    torch.save({"config": config_to_dict(model.config), "model": model.state_dict()}, source)
    data = source.read_bytes()
    argv = ["export", "--model", str(source), "--format", "ncnn", str(tmp_path / "weights.param")]
    assert main(argv) == 2
    assert f"{source}: exists; pass --force to overwrite" in _error_line(capsys)
    assert main([*argv, "--force", "--trust"]) == 2  # a torch file without a digest: --trust gets past that check
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning == f"tinysr: warning: {source}: no sha256 digest; loaded unchecked (--trust)"
    assert error.startswith("tinysr: error: ") and f"OUT {source} overlaps --model {source}: refusing" in error
    assert source.read_bytes() == data and not (tmp_path / "weights.param").exists()


def test_ncnn_export_checks_its_bin_like_its_param(tmp_path, weights, capsys):
    (tmp_path / "m.bin").mkdir()  # a folder where the weights would go
    assert main(["export", "--model", str(weights), "--format", "ncnn", str(tmp_path / "m.param"), "--force"]) == 2
    assert f"{tmp_path / 'm.bin'}: a folder; refusing to replace it" in _error_line(capsys)
    assert not (tmp_path / "m.param").exists()


# ------------------------------------------------------------------------------ case 10: one line, not a traceback


def test_export_to_a_read_only_folder_is_one_line(tmp_path, weights, read_only, capsys):
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    read_only(out_dir)
    assert main(["export", "--model", str(weights), "--format", "onnx", str(out_dir / "m.onnx")]) == 2
    assert f"cannot write into {out_dir} (Read-only file system)" in _error_line(capsys)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("fmt, name", [("onnx", "d.onnx"), ("numpy", "d.npz"), ("tflite", "d.tflite")])
def test_export_onto_a_folder_is_one_line_and_keeps_it(tmp_path, weights, capsys, fmt, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["export", "--model", str(weights), "--format", fmt, str(folder), "--force"]) == 2
    assert f"{folder}: a folder; refusing to replace it" in _error_line(capsys)
    assert _tree(folder) == {"keep.txt": b"mine"}


def test_export_onto_a_symlink_is_refused(tmp_path, weights, capsys):
    target = tmp_path / "elsewhere.onnx"
    target.write_bytes(b"not ours")
    (tmp_path / "m.onnx").symlink_to(target)
    assert main(["export", "--model", str(weights), "--format", "onnx", str(tmp_path / "m.onnx"), "--force"]) == 2
    assert "m.onnx: a symbolic link; refusing to replace it" in _error_line(capsys)
    assert target.read_bytes() == b"not ours"


def test_web_build_onto_the_page_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """`tinysr web --build` onto the package's own page folder (a copy of it here, so that a failure cannot harm
    the installed page)."""
    page = tmp_path / "page"
    shutil.copytree(site.PAGE_DIR, page)
    monkeypatch.setattr(site, "PAGE_DIR", page)
    before = _tree(page)
    for target in (page, page / "models"):
        assert main(["web", "--build", str(target), "--force", "--model", "tiny-1k-x2"]) == 2
        assert re.search(r"--build .* overlaps the page folder .*: refusing to replace a source", _error_line(capsys))
    assert _tree(page) == before and not (page / "models").exists()


def test_web_build_onto_a_file_or_a_read_only_folder_is_one_line(tmp_path, read_only, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert main(["web", "--build", str(file), "--force", "--model", "tiny-1k-x2"]) == 2
    assert f"{file}: exists and is not a folder" in _error_line(capsys)
    assert file.read_text() == "mine"
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only(ro)
    assert main(["web", "--build", str(ro / "site"), "--model", "tiny-1k-x2"]) == 2
    assert f"cannot write {ro / 'site'}: Read-only file system" in _error_line(capsys)
    assert list(ro.iterdir()) == []


def test_web_build_force_replaces_only_a_site_tinysr_built(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    assert main(["web", "--build", str(mine), "--force", "--model", "tiny-1k-x2"]) == 2
    assert f"{mine}: not a site tinysr built (no {site.MARKER} inside)" in _error_line(capsys)
    assert (mine / "index.html").read_text() == "my own page"
    built = tmp_path / "built"
    _ok(["web", "--build", str(built), "--model", "tiny-1k-x2"], capsys)
    (built / "extra.txt").write_text("kept")
    assert main(["web", "--build", str(built), "--model", "tiny-1k-x2"]) == 2
    assert "exists and is not empty" in _error_line(capsys)
    (built / ".index.html.0badc0de.tmp").write_bytes(b"<html>half")  # a killed build's temporary file
    _ok(["web", "--build", str(built), "--force", "--model", "tiny-1k-x2"], capsys)
    assert (built / "extra.txt").read_text() == "kept" and (built / "models" / "tiny-1k-x2.json").is_file()
    assert not (built / ".index.html.0badc0de.tmp").exists()


def test_a_nul_in_a_web_request_is_a_400_not_a_traceback(tmp_path, capfd):
    (tmp_path / "index.html").write_text("page")
    server = serve(tmp_path)
    try:
        host, port = server.server_address[:2]
        for path in ("/%00", "/index.html%00.js", "/models/%00/x"):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 400, path
            connection.close()
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", "/index.html")
        assert connection.getresponse().read() == b"page"  # the server still serves
    finally:
        server.shutdown()
    assert "Traceback" not in capfd.readouterr().err


# ------------------------------------------------------------------------------ case 12: friction


def test_a_suffix_that_does_not_match_the_format_is_refused(tmp_path, weights, capsys):
    """`export --format tflite x.onnx` wrote LiteRT under an .onnx name."""
    for fmt, name, suffix in [("tflite", "x.onnx", ".tflite"), ("onnx", "x.tflite", ".onnx"),
                              ("numpy", "x.onnx", ".npz"), ("ncnn", "x", ".param"), ("coreml", "x", ".mlpackage")]:
        assert main(["export", "--model", str(weights), "--format", fmt, str(tmp_path / name)]) == 2
        assert f"give OUT the suffix {suffix}" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"]


def test_ncnn_files_are_named_as_the_readme_says(tmp_path, weights, capsys):
    readme = (REPO / "README.md").read_text()
    assert "`ncnn` (`.[ncnn]`): OUT `NAME.param` and `NAME.bin` beside it" in readme
    out = _ok(["export", "--model", str(weights), "--format", "ncnn", str(tmp_path / "m.param")], capsys)
    assert f"wrote {tmp_path / 'm.param'} + {tmp_path / 'm.bin'} (ncnn, " in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.param", "tiny.safetensors"]


def test_coreml_export_reports_the_package_size(tmp_path, capsys):
    out = tmp_path / "m.mlpackage"
    printed = _ok(["export", "--model", "tiny-1k-x2", "--format", "coreml", str(out)], capsys)
    reported = int(re.search(r"\(coreml, ([\d,]+) bytes\)", printed)[1].replace(",", ""))
    files = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert reported == files and 20_000 < files < 40_000  # the tiny-1k-x2 package, ~24 KB


def test_report_folder_is_ignored_by_git():
    assert "report/" in (REPO / ".gitignore").read_text().split()


def test_calibration_images_are_a_source_an_export_may_sit_beside_but_never_replace(tmp_path, weights, data_dir,
                                                                                     capsys):
    calibration = tmp_path / "cal.onnx"  # a folder of LR images that happens to carry the format's suffix
    shutil.copytree(data_dir / "Set5", calibration)
    before = _tree(calibration)
    argv = ["export", "--model", str(weights), "--format", "onnx-int8", "--calibration", str(calibration)]
    assert main([*argv, str(calibration), "--force"]) == 2
    assert f"OUT {calibration} overlaps --calibration {calibration}: refusing to replace a source" in _error_line(capsys)
    _ok([*argv, str(calibration / "m.onnx")], capsys)  # beside the images: nothing of theirs is replaced
    assert _tree(calibration).keys() == before.keys() | {"m.onnx"}
