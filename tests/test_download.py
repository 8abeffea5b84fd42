"""tinysr.data.download and div2k.prepare_div2k against a local HTTP server on 127.0.0.1 (Range-capable)."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

import tinysr.data.download as download_module
from tinysr.data.div2k import DIV2K_SHA256, archive_names, div2k, prepare_div2k
from tinysr.data.download import (DownloadError, UnverifiedDownloadWarning, download, extract_zip, marker_path,
                                  sha256_file)
from tinysr.errors import TinySRError


def _png(value: int, size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


ARCHIVES = {
    "DIV2K_train_HR.zip": _zip({"DIV2K_train_HR/": b"", "DIV2K_train_HR/0001.png": _png(10, 8),
                                "DIV2K_train_HR/0002.png": _png(20, 8)}),
    "DIV2K_train_LR_bicubic_X2.zip": _zip({"DIV2K_train_LR_bicubic/X2/0001x2.png": _png(10, 4),
                                           "DIV2K_train_LR_bicubic/X2/0002x2.png": _png(20, 4)}),
}
SUMS = {name: hashlib.sha256(data).hexdigest() for name, data in ARCHIVES.items()}


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-` unless `server.ignore_range`; `server.cut_after` bytes
    then drops the connection (a short body under a full Content-Length)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        data = server.files.get(self.path.rsplit("/", 1)[-1])
        server.requests.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and not server.ignore_range else 0
        if start >= len(data) and match and not server.ignore_range:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        self.wfile.write(body if server.cut_after is None else body[: server.cut_after])
        if server.cut_after is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.ignore_range, httpd.cut_after = dict(ARCHIVES), [], False, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/cvl/DIV2K"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _prepare(root, server, **kwargs):
    return prepare_div2k(root, scales=(2,), splits=("train",), base_url=server.url, checksums=SUMS,
                         timeout=5, progress=False, **kwargs)


def test_prepare_downloads_verifies_extracts_then_skips(tmp_path, server):
    assert _prepare(tmp_path, server) == ["DIV2K_train_HR.zip", "DIV2K_train_LR_bicubic_X2.zip"]
    images = div2k(tmp_path, scales=(2,))
    assert [p.name for p in images.hr_paths] == ["0001.png", "0002.png"]
    assert [p.name for p in images.lr_paths[2]] == ["0001x2.png", "0002x2.png"]
    assert marker_path(tmp_path, "DIV2K_train_HR.zip").exists()
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".tmp-extract-*"))
    n_requests = len(server.requests)
    assert _prepare(tmp_path, server) == [] and len(server.requests) == n_requests


def test_checksum_mismatch_no_extraction(tmp_path, server):
    sums = {**SUMS, "DIV2K_train_HR.zip": "0" * 64}
    with pytest.raises(TinySRError, match=r"DIV2K_train_HR\.zip\.part: SHA-256 mismatch \(got [0-9a-f]{64}, "
                                          r"expected 0{64}\)"):
        prepare_div2k(tmp_path, scales=(2,), splits=("train",), base_url=server.url, checksums=sums,
                      progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no zip, no part, no folder, no marker


def test_resume_from_part_uses_range(tmp_path, server):
    data = ARCHIVES["DIV2K_train_HR.zip"]
    (tmp_path / "DIV2K_train_HR.zip.part").write_bytes(data[: len(data) // 2])
    download(f"{server.url}/DIV2K_train_HR.zip", tmp_path / "DIV2K_train_HR.zip", sha256=SUMS["DIV2K_train_HR.zip"],
             progress=False)
    assert server.requests == [("/cvl/DIV2K/DIV2K_train_HR.zip", f"bytes={len(data) // 2}-")]
    assert (tmp_path / "DIV2K_train_HR.zip").read_bytes() == data


def test_server_ignoring_range_restarts(tmp_path, server):
    server.ignore_range = True
    data = ARCHIVES["DIV2K_train_HR.zip"]
    (tmp_path / "DIV2K_train_HR.zip.part").write_bytes(b"junk" * 10)
    download(f"{server.url}/DIV2K_train_HR.zip", tmp_path / "DIV2K_train_HR.zip", sha256=SUMS["DIV2K_train_HR.zip"],
             progress=False)
    assert (tmp_path / "DIV2K_train_HR.zip").read_bytes() == data


def test_interrupted_download_then_resumed(tmp_path, server):
    data = ARCHIVES["DIV2K_train_HR.zip"]
    server.cut_after = len(data) // 3
    url, dest = f"{server.url}/DIV2K_train_HR.zip", tmp_path / "DIV2K_train_HR.zip"
    with pytest.raises(DownloadError, match=r"DIV2K_train_HR\.zip: download failed"):
        download(url, dest, sha256=SUMS["DIV2K_train_HR.zip"], progress=False, timeout=5)
    assert (tmp_path / "DIV2K_train_HR.zip.part").stat().st_size == len(data) // 3 and not dest.exists()
    server.cut_after = None
    download(url, dest, sha256=SUMS["DIV2K_train_HR.zip"], progress=False)
    assert server.requests[-1][1] == f"bytes={len(data) // 3}-"
    assert sha256_file(dest) == SUMS["DIV2K_train_HR.zip"]


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cvl/DIV2K"  # nothing listens there any more


def test_offline_error_names_url_and_manual_place(tmp_path):
    url = _dead_url()
    with pytest.raises(TinySRError, match=rf"^{url}/DIV2K_train_HR\.zip: download failed \(.+\); download it by "
                                          rf"hand and place DIV2K_train_HR\.zip in {tmp_path}, then run again$"):
        prepare_div2k(tmp_path, scales=(2,), splits=("train",), base_url=url, checksums=SUMS, progress=False)


def test_zips_placed_by_hand_need_no_network(tmp_path):
    for name, data in ARCHIVES.items():
        (tmp_path / name).write_bytes(data)
    assert prepare_div2k(tmp_path, scales=(2,), splits=("train",), base_url=_dead_url(), checksums=SUMS,
                         progress=False) == list(ARCHIVES)
    assert len(div2k(tmp_path, scales=(2,)).lr_paths[2]) == 2


def test_unknown_checksum_warns_loudly_but_extracts(tmp_path, server):
    with pytest.warns(UnverifiedDownloadWarning, match=r"DIV2K_train_LR_bicubic_X2\.zip.*NOT verified"):
        prepare_div2k(
            tmp_path, scales=(2,), splits=("train",), base_url=server.url,
            checksums={"DIV2K_train_HR.zip": SUMS["DIV2K_train_HR.zip"]}, progress=False)
    assert (tmp_path / "DIV2K_train_LR_bicubic" / "X2" / "0002x2.png").is_file()


def _evil_zip(tmp_path, name: str, *, symlink: bool = False):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("good/ok.png", b"fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"/etc/passwd" if symlink else b"evil")
    archive = tmp_path / "evil.zip"
    archive.write_bytes(buffer.getvalue())
    return archive


@pytest.mark.parametrize("name, symlink, reason", [
    ("../evil.png", False, "climbs out with '..'"),
    ("good/../../evil.png", False, "climbs out with '..'"),
    ("/tmp/evil.png", False, "has an absolute path"),
    ("good/link", True, "is a symlink"),
])
def test_unsafe_members_refused_nothing_written(tmp_path, name, symlink, reason):
    archive = _evil_zip(tmp_path, name, symlink=symlink)
    dest = tmp_path / "root"
    with pytest.raises(TinySRError, match=rf"evil\.zip: refusing to extract, member .* {re.escape(reason)}$"):
        extract_zip(archive, dest)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.zip", "root"]  # nothing inside root or beside it
    assert not marker_path(dest, "evil.zip").exists()


def test_interrupted_extraction_never_looks_complete(tmp_path, monkeypatch):
    archive = tmp_path / "DIV2K_train_HR.zip"
    archive.write_bytes(ARCHIVES["DIV2K_train_HR.zip"])

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(download_module, "_merge_into", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_zip(archive, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIV2K_train_HR.zip"]  # no HR folder, marker, temp dir


def test_corrupt_zip_one_line_error(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(TinySRError, match=r"bad\.zip: not a valid zip archive"):
        extract_zip(tmp_path / "bad.zip", tmp_path / "out")


def test_official_checksum_table_complete():
    assert sorted(DIV2K_SHA256) == sorted(archive_names(splits=("train", "valid"), scales=(2, 3, 4)))
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in DIV2K_SHA256.values())
    assert DIV2K_SHA256["DIV2K_valid_HR.zip"] == "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"


def test_cli_prepare_div2k(tmp_path, server, capsys, monkeypatch):
    from tinysr.cli import main

    monkeypatch.setattr("tinysr.data.div2k.DIV2K_SHA256", SUMS)  # the CLI uses the official table
    args = ["prepare", "div2k", "--root", str(tmp_path), "--scales", "2", "--splits", "train",
            "--base-url", server.url]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["extracted: DIV2K_train_HR.zip, DIV2K_train_LR_bicubic_X2.zip",
                   "DIV2K-train: 2 HR images, official LR for x2"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"DIV2K archives already extracted in {tmp_path}"


def test_cli_prepare_div2k_offline_one_line(tmp_path, capsys):
    from tinysr.cli import main

    assert main(["prepare", "div2k", "--root", str(tmp_path), "--splits", "valid", "--base-url", _dead_url()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinysr: error: http://127.0.0.1:") and err.count("\n") == 1
    assert f"place DIV2K_valid_HR.zip in {tmp_path}" in err


def test_a_full_disk_during_a_download_is_one_line_and_resumable(tmp_path, server):
    """RLIMIT_FSIZE stands in for a full disk (writes past it fail with EFBIG, as ENOSPC would)."""
    import subprocess
    import sys

    code = ("import resource, signal, sys\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
            "from pathlib import Path\nfrom tinysr.data.download import download\nfrom tinysr.errors import TinySRError\n"
            "try:\n    download(sys.argv[1], Path(sys.argv[2]), sha256=None, timeout=5, progress=False)\n"
            "except TinySRError as exc:\n    print(exc)\n    raise SystemExit(2)\n")
    dest = tmp_path / "DIV2K_train_HR.zip"
    result = subprocess.run([sys.executable, "-c", code, f"{server.url}/DIV2K_train_HR.zip", str(dest)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip().startswith(f"{dest}.part: cannot write the download (File too large)")
    assert not dest.exists() and dest.with_name(dest.name + ".part").stat().st_size <= 300


def test_a_member_that_would_replace_its_own_archive_is_refused(tmp_path):
    """`prepare div2k` extracts into --root, where the zips are: a member named like its archive would overwrite
    the source while it is being read."""
    root = tmp_path / "root"
    root.mkdir()
    archive = _evil_zip(tmp_path, "evil.zip").rename(root / "evil.zip")
    data = archive.read_bytes()
    message = r"evil\.zip: refusing to extract, member 'evil\.zip' would replace the archive"
    with pytest.raises(TinySRError, match=message):
        extract_zip(archive, root)
    assert archive.read_bytes() == data and sorted(p.name for p in root.iterdir()) == ["evil.zip"]
