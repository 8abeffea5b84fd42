"""tinysr.lock: one writer per run folder, refused at once in another process, gone with its holder."""

import os
import subprocess
import sys

import pytest

from tinysr.errors import TinySRError
from tinysr import lock
from test_train import folders  # noqa: F401 (a fixture)

HOLDER = ("import sys, time\nfrom tinysr import lock\nlock.hold(sys.argv[1])\nprint('held', flush=True)\n"
          "time.sleep(60)\n")


def _holder(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(TinySRError, match=r"run: another tinysr process is writing this run folder"):
            lock.hold(run)
        assert not lock.held(run)
    finally:
        proc.kill()  # SIGKILL: no clean-up code runs in the holder
        proc.wait()
    lock.hold(run)  # the kernel dropped the killed holder's lock
    try:
        assert lock.held(run)
    finally:
        lock.release(run)


def test_hold_is_reentrant_in_one_process_and_release_gives_it_back(tmp_path):
    run = tmp_path / "run"
    lock.hold(run)
    lock.hold(tmp_path / "x" / ".." / "run")  # the same folder by another spelling: already held
    lock.release(run)
    assert not lock.held(run)
    proc = _holder(run)  # another process can take it now
    proc.kill()
    proc.wait()


def test_an_unwritable_place_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TinySRError, match="cannot lock the run folder"):
        lock.hold(blocker / "run")


def test_a_second_writer_of_a_run_is_refused_and_changes_nothing(tmp_path, folders, monkeypatch, capsys):  # noqa: F811
    """While this process holds a run (it trained it), another `tinysr train` may neither resume it nor replace
    it with --out RUN --force: one line, exit 2, every file as it was."""
    from tinysr.cli import main
    from test_train import _argv

    monkeypatch.setenv("TINYSR_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(_argv(folders, run)) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    env = {**os.environ, "TINYSR_CACHE": str(tmp_path / "cache")}
    for argv in (["train", "--resume", str(run), "--steps", "40"], [*_argv(folders, run), "--force"]):
        result = subprocess.run([sys.executable, "-m", "tinysr", *argv], capture_output=True, text=True, env=env,
                                timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"tinysr: error: {run}: another tinysr process is writing this run folder; wait for it to end (or stop "
            "it) before starting, resuming or replacing the run"]
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
