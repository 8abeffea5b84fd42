"""tinysr.data.testsets (`tinysr prepare testsets`) against a local HTTP server on 127.0.0.1 that serves small
files at the raw.githubusercontent.com layout (`/<owner>/<repo>/<commit>/<path>`, Range-capable), and the real
manifest against the shared folder's SHA256SUMS."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinysr.data.testsets as testsets
from tinysr.cli import parser as cli_parser
from tinysr.data.download import DownloadError
from tinysr.data.testsets import (DEFAULT_SETS, RAW_BASE_URL, SETS, Entry, format_manifest, load_manifest,
                                  parse_manifest, prepare_testsets)
from tinysr.errors import TinySRError

SHA = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731


def _image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def _encode(im: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _pixels(data: bytes) -> str:
    """The pixel digest, written out here: SHA-256 of "<mode> <w>x<h>\\n" and the decoded bytes."""
    im = Image.open(io.BytesIO(data))
    return SHA(f"{im.mode} {im.width}x{im.height}\n".encode() + np.asarray(im).tobytes())


# The sources, by laid-out name: (source file bytes, "published" file bytes). A copied file is its own published
# file; a converted one was published through another encoder (PNG level 1 stands in for oxipng), so its bytes differ
# from what prepare writes and the pixels decide.
_RGB, _GREY = _image("RGB", (24, 16), 0), _image("L", (10, 14), 1)
_JPEG = _encode(_image("RGB", (20, 12), 2), "JPEG", quality=90)
_BMP = _encode(_image("RGB", (9, 7), 3), "BMP")
_URBAN = _encode(_image("RGB", (16, 16), 4), "PNG")
FILES = {
    "Set5/baby.png": (_encode(_RGB, "PNG"), None),
    "Set5/bridge.png": (_encode(_GREY, "PNG"), None),
    "BSD100/3096.png": (_JPEG, _encode(Image.open(io.BytesIO(_JPEG)), "PNG", compress_level=1)),
    "Urban100/img_001.webp": (_URBAN, _encode(Image.open(io.BytesIO(_URBAN)), "WEBP", lossless=True, method=0)),
    "T91/t1.png": (_BMP, _encode(Image.open(io.BytesIO(_BMP)), "PNG", compress_level=1)),
    "Manga109/ARMS.png": (_encode(_image("RGB", (8, 12), 5), "PNG"), None),
}
SOURCE_NAMES = {"Set5/baby.png": "CSet5/baby.png", "Set5/bridge.png": "CSet5/bridge.png",
                "BSD100/3096.png": "BSDS500/data/images/val/3096.jpg", "Urban100/img_001.webp": "CUrban100/img_001.png",
                "T91/t1.png": "data/yang91/t1.bmp", "Manga109/ARMS.png": "CManga109/ARMS.png"}
SETS_HERE = ("Set5", "BSD100", "Urban100", "T91", "Manga109")


def _url_path(name: str) -> str:
    source = SETS[name.split("/")[0]]
    return f"/raw/{source.repo}/{source.commit}/{SOURCE_NAMES[name]}"


def _entries() -> list[Entry]:
    entries = []
    for name, (source, published) in FILES.items():
        pixels = None if published is None else _pixels(source)
        entries.append(Entry(name, SHA(published or source), pixels, SHA(source)))
    return entries


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files` by path; honours `Range: bytes=N-`; `server.cut[path] = n` sends n bytes of the next
    answer for path under a full Content-Length, then drops the connection (once)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = server.cut.pop(self.path, None)
        self.wfile.write(data[start:] if cut is None else data[start:start + cut])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {_url_path(name): source for name, (source, _) in FILES.items()}
    httpd.requests, httpd.cut = [], {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/raw"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _prepare(out, server, *, sets=SETS_HERE, **kwargs):
    return prepare_testsets(out, sets=sets, base_url=server.url, manifest=_entries(), timeout=5, progress=False,
                            **kwargs)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_lays_out_converts_and_checks_then_skips(tmp_path, server):
    with pytest.warns(UserWarning, match=r"^Manga109: academic use only"):
        assert _prepare(tmp_path, server) == {"Set5": 2, "BSD100": 1, "Urban100": 1, "T91": 1, "Manga109": 1}
    assert _tree(tmp_path) == sorted(FILES)  # no .downloads, no .part, no temporary file
    assert sorted(path for path, _ in server.requests) == sorted(map(_url_path, FILES))
    assert server.requests[0][0] == ("/raw/majedelhelou/denoising_datasets/58234876fef6f1b56306705c78dfd40cdb837b86"
                                     "/CSet5/baby.png")
    for name, (source, published) in FILES.items():
        laid_out = (tmp_path / name).read_bytes()
        if published is None:
            assert laid_out == source, name
        else:  # converted: the source's pixels, in the laid-out format, not the published bytes
            assert _pixels(laid_out) == _pixels(source) and laid_out != published, name
    assert Image.open(tmp_path / "Urban100/img_001.webp").format == "WEBP"
    assert Image.open(tmp_path / "T91/t1.png").format == "PNG"
    assert Image.open(tmp_path / "Set5/bridge.png").mode == "L"
    n_requests = len(server.requests)
    assert _prepare(tmp_path, server) == dict.fromkeys(SETS_HERE, 0) and len(server.requests) == n_requests


def test_published_files_need_no_network(tmp_path, server):
    """A folder that already holds the published bytes (the shared folder's oxipng PNGs) is checked, not fetched."""
    for name, (source, published) in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(published or source)
    assert _prepare(tmp_path, server) == dict.fromkeys(SETS_HERE, 0) and server.requests == []
    assert not (tmp_path / ".downloads").exists()  # a complete folder is only read (the shared one is read-only)


def test_second_downloader_refused(tmp_path, server):
    (tmp_path / ".downloads").mkdir()
    fd = os.open(tmp_path / ".downloads/.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another process's `tinysr.lock.hold` would
        with pytest.raises(TinySRError, match=rf"^{re.escape(str(tmp_path))}: another tinysr process is downloading"):
            _prepare(tmp_path, server, sets=("Set5",))
    finally:
        os.close(fd)
    assert server.requests == [] and _tree(tmp_path) == [".downloads/.lock"]  # the other process's lock, untouched
    assert _prepare(tmp_path, server, sets=("Set5",)) == {"Set5": 2} and _tree(tmp_path) == sorted(
        name for name in FILES if name.startswith("Set5/"))


def test_cut_download_resumes_with_range(tmp_path, server):
    path = _url_path("Urban100/img_001.webp")
    server.cut[path] = 100
    with pytest.raises(DownloadError, match=r"CUrban100/img_001\.png: download failed .*; run the same command "
                                            r"again to resume$"):
        _prepare(tmp_path, server, sets=("Urban100",))
    part = tmp_path / ".downloads/Urban100/img_001.png.part"
    assert part.stat().st_size == 100 and _tree(tmp_path) == [".downloads/Urban100/img_001.png.part"]
    assert _prepare(tmp_path, server, sets=("Urban100",)) == {"Urban100": 1}
    assert server.requests[-1] == (path, "bytes=100-")
    assert _tree(tmp_path) == ["Urban100/img_001.webp"]
    assert _pixels((tmp_path / "Urban100/img_001.webp").read_bytes()) == _pixels(_URBAN)


def test_corrupt_download_refused_and_removed(tmp_path, server):
    path = _url_path("Set5/bridge.png")
    good = server.files[path]
    server.files[path] = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(TinySRError, match=rf"^{re.escape(str(tmp_path))}/\.downloads/Set5/bridge\.png\.part: "
                                          r"SHA-256 mismatch \(got [0-9a-f]{64}, expected [0-9a-f]{64}\)"):
        _prepare(tmp_path, server, sets=("Set5",))
    assert _tree(tmp_path) == ["Set5/baby.png"]  # the checked file stays; nothing of the corrupt one
    server.files[path] = good
    assert _prepare(tmp_path, server, sets=("Set5",)) == {"Set5": 1}
    assert (tmp_path / "Set5/bridge.png").read_bytes() == good


def test_conversion_with_other_pixels_refused(tmp_path, server):
    entries = [Entry(e.name, e.sha256, "0" * 64 if e.pixels else None, e.source_sha256) for e in _entries()]
    with pytest.raises(TinySRError, match=rf"^{re.escape(str(tmp_path))}/BSD100/3096\.png: converted from "
                                          r"http://.*/3096\.jpg, its pixels differ from the published ones"):
        prepare_testsets(tmp_path, sets=("BSD100",), base_url=server.url, manifest=entries, progress=False)
    assert not (tmp_path / "BSD100/3096.png").exists()


@pytest.mark.parametrize("name, message", [
    ("Set5/baby.png", r"SHA-256 mismatch \(got [0-9a-f]{64}, expected [0-9a-f]{64}\); delete it and run again$"),
    ("T91/t1.png", r"not the published image \(SHA-256 [0-9a-f]{64}, and other pixels\); delete it and run again$"),
])
def test_corrupt_laid_out_file_refused_untouched(tmp_path, server, name, message):
    wrong = _encode(_image("RGB", (9, 7), 99), "PNG")
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(wrong)
    with pytest.raises(TinySRError, match=rf"^{re.escape(str(tmp_path / name))}: {message}"):
        _prepare(tmp_path, server, sets=(name.split("/")[0],))
    assert (tmp_path / name).read_bytes() == wrong


def test_same_pixels_other_bytes_accepted(tmp_path, server):
    (tmp_path / "T91").mkdir()
    (tmp_path / "T91/t1.png").write_bytes(_encode(Image.open(io.BytesIO(_BMP)), "PNG", compress_level=9))
    assert _prepare(tmp_path, server, sets=("T91",)) == {"T91": 0} and server.requests == []


def test_if_missing(tmp_path, server):
    (tmp_path / "Set5").mkdir()
    (tmp_path / "Set5/baby.png").write_bytes(b"not read")
    (tmp_path / "Set5/bridge.png").write_bytes(b"not read")
    assert _prepare(tmp_path, server, sets=("Set5",), if_missing=True) == {"Set5": 0} and server.requests == []
    (tmp_path / "Set5/bridge.png").unlink()
    with pytest.raises(TinySRError, match=r"Set5/baby\.png: SHA-256 mismatch"):  # one missing: all are checked
        _prepare(tmp_path, server, sets=("Set5",), if_missing=True)


def test_unknown_set(tmp_path):
    with pytest.raises(TinySRError, match=r"^--sets: unknown set 'Set6'; known: Set5, Set14"):
        prepare_testsets(tmp_path, sets=("Set6",), manifest=_entries())
    assert list(tmp_path.iterdir()) == []


def test_manifest_round_trip():
    entries = _entries()
    assert parse_manifest(format_manifest(entries, "a header\nof two lines")) == entries
    with pytest.raises(TinySRError, match=r"testsets_sha256\.txt line 2: expected 4 fields"):
        parse_manifest("# header\nabc - def Set5\n")


def test_real_manifest_matches_shared_sums(data_dir):
    """The packaged manifest lists exactly the shared folder's files (plus Manga109), with its SHA256SUMS."""
    entries = load_manifest()
    counts = {name: sum(e.set_name == name for e in entries) for name in SETS}
    assert counts == {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100, "Manga109": 109, "T91": 91,
                      "BSD200": 200, "matlab_imresize": 3}
    sums = dict(reversed(line.split()) for line in (data_dir / "SHA256SUMS").read_text().splitlines())
    assert {e.name: e.sha256 for e in entries if e.set_name != "Manga109"} == sums
    for entry in entries:
        converted = SETS[entry.set_name].convert != "copy"
        assert (entry.pixels is not None) == converted, entry.name
        assert converted or entry.source_sha256 == entry.sha256, entry.name
    baby = next(e for e in entries if e.name == "Set5/baby.png")
    assert testsets.source_url(baby, SETS["Set5"], RAW_BASE_URL) == (
        "https://raw.githubusercontent.com/majedelhelou/denoising_datasets/58234876fef6f1b56306705c78dfd40cdb837b86/"
        "CSet5/baby.png")
    bsd = next(e for e in entries if e.name == "BSD100/3096.png")
    assert testsets.source_url(bsd, SETS["BSD100"], RAW_BASE_URL) == (
        "https://raw.githubusercontent.com/BIDS/BSDS500/a04b7c6c3a9f0ace74bf205c72a43d32e1c72722/"
        "BSDS500/data/images/val/3096.jpg")
    assert bsd.pixels == _pixels((data_dir / "BSD100/3096.png").read_bytes())


def test_shared_folder_checks_without_network(data_dir):
    """Here the data is present: every file of the default sets is checked (by its bytes) and nothing is fetched."""
    dead = "http://127.0.0.1:9/nothing-listens"
    assert prepare_testsets(data_dir, base_url=dead, progress=False) == dict.fromkeys(DEFAULT_SETS, 0)


def test_grammar_names_equal_the_library():
    assert cli_parser.TESTSETS == tuple(SETS) and cli_parser.TESTSETS_DEFAULT == DEFAULT_SETS
    assert cli_parser.TESTSETS_BASE_URL == RAW_BASE_URL


def test_cli(tmp_path, server, capsys, monkeypatch):
    from tinysr.cli import main

    monkeypatch.setattr(testsets, "load_manifest", _entries)
    args = ["prepare", "testsets", "--out", str(tmp_path), "--sets", "Set5", "T91", "--base-url", server.url]
    assert main(args) == 0
    assert capsys.readouterr().out == (f"{tmp_path}: Set5, T91 in place and checked (files laid out now: Set5 2, "
                                       "T91 1)\n")
    assert main([*args, "--if-missing"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}: Set5, T91 already in place (--if-missing: not read again)\n"
    assert main(args) == 0
    assert capsys.readouterr().out == f"{tmp_path}: Set5, T91 in place and checked (nothing downloaded)\n"
    (tmp_path / "T91/t1.png").write_bytes(b"broken")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (f"tinysr: error: {tmp_path}/T91/t1.png: not the published image (SHA-256 {SHA(b'broken')}, and "
                   "other pixels); delete it and run again\n")
