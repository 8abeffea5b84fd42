"""tinysr.atomic: every writer's files get the umask's mode; a failed write leaves the old file and no temp file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinysr import atomic
from tinysr.data.cache import load_pairs
from tinysr.data.cinic import prepare_cinic
from tinysr.data.folder import image_folder
from tinysr.data.io import write_image
from tinysr.errors import TinySRError
from tinysr.export.numpy_export import export_numpy
from tinysr.models import create_model
from tinysr.models.weights import save_weights
from tinysr import lock
from tinysr.train import runs
from tinysr.train.config import DataConfig, RunConfig, TrainConfig

UMASK_MODES = [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]


@pytest.fixture(params=UMASK_MODES, ids=["umask022", "umask077"])
def modes(request):
    """Run the test under a umask; yields (expected file mode, expected folder mode)."""
    umask, file_mode, dir_mode = request.param
    old = os.umask(umask)
    try:
        yield file_mode, dir_mode
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _images(folder: Path, n: int, size: int = 12) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (size, size, 3), np.uint8))
    return folder


def test_atomic_write_bytes_and_temp_dir_follow_the_umask(tmp_path, modes):
    file_mode, dir_mode = modes
    atomic.atomic_write_bytes(tmp_path / "a.bin", b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc" and _mode(tmp_path / "a.bin") == file_mode
    assert _mode(atomic.make_temp_dir(tmp_path / "out")) == dir_mode


def test_images_and_weights_files(tmp_path, modes):
    file_mode, _ = modes
    write_image(tmp_path / "x.png", np.zeros((4, 5, 4), np.uint8))
    write_image(tmp_path / "x.jpg", np.zeros((4, 5, 3), np.uint8))
    model = create_model("edsr-tiny")
    save_weights(tmp_path / "w.safetensors", model)
    export_numpy(model, tmp_path / "w.npz")
    for name in ("x.png", "x.jpg", "w.safetensors", "w.npz"):
        assert _mode(tmp_path / name) == file_mode, name


def test_run_files(tmp_path, modes):
    file_mode, _ = modes
    config = RunConfig(model={"n_blocks": 0, "n_feats": 4, "scale": 2, "family": "edsr"},
                       train=TrainConfig(steps=10), data=DataConfig(train=("/d",), val="/v", scale=2),
                       protocol="study", seed=0)
    run = runs.open_run(tmp_path / "run", config)
    runs.append_metrics(run, {"step": 1})
    runs.save_best(run, create_model("edsr-tiny"), step=1, val_psnr=30.0, protocol="study")
    runs.save_last(run, {"step": 1})
    runs.write_status(run, state="finished", step=1, steps=10)
    assert {p.name: _mode(p) for p in run.iterdir()} == {name: file_mode for name in (*runs.RUN_FILES, lock.LOCK)}


def test_cache_entry(tmp_path, modes):
    file_mode, _ = modes
    pairs = load_pairs(image_folder(_images(tmp_path / "hr", 2)), scale=2, cache_dir=tmp_path / "cache",
                       progress=False)
    files = sorted(pairs.cache_path.iterdir())
    assert [p.name for p in files] == [".lock", "hr.npy", "index.json", "lr.npy"]
    assert [_mode(p) for p in files] == [file_mode] * 4


def test_cinic_subset(tmp_path, modes):
    file_mode, dir_mode = modes
    for name in ("cat", "dog"):
        _images(tmp_path / "src" / name, 3, size=8)
    prepare_cinic(tmp_path / "src", tmp_path / "out", per_class=(2, 1), hr_size=8, progress=False)
    out = tmp_path / "out"
    assert _mode(out) == dir_mode and _mode(out / "train") == dir_mode
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 7 and {_mode(p) for p in files} == {file_mode}  # 4 train + 2 val + manifest


class _Boom(Exception):
    pass


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(_Boom):
        with atomic.atomic_open(target) as f:
            f.write(b"half of the new")
            raise _Boom
    with pytest.raises(OSError):
        atomic.atomic_write_bytes(target, b"new", before_rename=lambda: _raise(OSError(errno.ENOSPC, "full")))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_failing_image_write_is_one_line_and_keeps_the_old_image(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    write_image(target, np.full((2, 3, 3), 7, np.uint8))
    old = target.read_bytes()

    def full_disk(fp, img):
        fp.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tinysr.data.io.write_png", full_disk)
    with pytest.raises(TinySRError, match=r"x.png: cannot write image \(No space left on device\)$"):
        write_image(target, np.zeros((2, 3, 3), np.uint8))
    assert target.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_before_rename_sees_the_complete_temp_file(tmp_path):
    seen = []
    target = tmp_path / "f.bin"
    atomic.atomic_write_bytes(target, b"new", before_rename=lambda: seen.extend(
        p.read_bytes() for p in tmp_path.glob(".f.bin.*.tmp")))
    assert seen == [b"new"] and target.read_bytes() == b"new"


def _raise(exc: BaseException) -> None:
    raise exc


# ---------------------------------------------------------------- claiming a name; what dead writers left (issue 25)


def test_a_claim_without_replace_keeps_what_appeared_meanwhile(tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(FileExistsError):
        with atomic.atomic_open(target, replace=False) as f:
            f.write(b"ours")
            target.write_bytes(b"theirs")  # another writer finishes first
    assert target.read_bytes() == b"theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    (tmp_path / "link.bin").symlink_to(tmp_path / "nowhere")  # a dangling link holds its name too
    with pytest.raises(FileExistsError):
        _claim_new(tmp_path / "link.bin")
    assert not (tmp_path / "nowhere").exists()
    with atomic.atomic_open(target) as f:  # replace=True, the default: the writer replaces
        f.write(b"ours")
    assert target.read_bytes() == b"ours"
    write_image(tmp_path / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(TinySRError, match=r"x.png: exists \(written by another process meanwhile\); pass --force"):
        write_image(tmp_path / "x.png", np.ones((2, 2), np.uint8), replace=False)
    assert np.asarray(Image.open(tmp_path / "x.png")).max() == 0


def _claim_new(path: Path) -> None:
    with atomic.atomic_open(path, replace=False) as f:
        f.write(b"new")


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV])
def test_a_claim_on_a_file_system_without_hard_links_checks_then_renames(tmp_path, monkeypatch, code):
    def no_links(src, dst, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    _claim_new(tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        _claim_new(tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["a.bin"]


def test_a_writer_holds_its_temp_file_locked_until_the_name_is_claimed(tmp_path):
    target = tmp_path / "f.bin"
    with atomic.atomic_open(target, replace=False) as f:
        f.write(b"data")
        (tmp,) = tmp_path.glob(".f.bin.*.tmp")
        assert atomic.TEMP_NAME.fullmatch(tmp.name)
        assert atomic.remove_dead_temps(tmp_path) == 0 and atomic.remove_stale_temps(target) == 0  # live: kept
        assert tmp.exists()
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_only_dead_writers_temp_files_are_removed(tmp_path, monkeypatch):
    """Dead: nobody holds the lock, and not an empty file younger than a minute (a writer between its exclusive
    creation and its lock). Never a link, a folder, a live writer's file or a name tinysr does not make."""
    import fcntl
    import time

    names = {"dead": ".a.png.0123abcd.tmp", "live": ".b.png.0123abcd.tmp", "newborn": ".c.png.0123abcd.tmp",
             "old-empty": ".d.png.0123abcd.tmp", "other": ".e.png.tmp", "folder": ".f.0123abcd.tmp",
             "link": ".g.png.0123abcd.tmp"}
    for key in ("dead", "live", "other"):
        (tmp_path / names[key]).write_bytes(b"half an image")
    (tmp_path / names["newborn"]).write_bytes(b"")
    (tmp_path / names["old-empty"]).write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(tmp_path / names["old-empty"], (hour_ago, hour_ago))
    (tmp_path / names["folder"]).mkdir()
    (tmp_path / names["link"]).symlink_to(tmp_path / names["dead"])
    fd = os.open(tmp_path / names["live"], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert atomic.remove_dead_temps(tmp_path) == 2
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == sorted(names[k] for k in ("live", "newborn", "other", "folder", "link"))
    assert atomic.remove_dead_temps(tmp_path / "missing") == 0
    assert atomic.remove_stale_temps(tmp_path / "c.png") == 1  # a folder's lock holder: no newborn wait
