"""Serve a built site (`tinysr.web.site`) on 127.0.0.1 with the standard library: static files only.

The page computes everything in the browser; the server only hands out files. `serve` returns a running server
(a daemon thread), so tests and `tinysr web` share it; port 0 picks a free port. A request the file system cannot
name (a NUL byte, `/%00`) is answered 400; any other failure of one request is one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tinysr.errors import one_line


class _Handler(SimpleHTTPRequestHandler):
    """Static files with the MIME types module scripts need, no caching (a rebuilt site shows at once), and no
    access log on stderr."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".json": "application/json", ".css": "text/css", ".html": "text/html"}

    def send_head(self):
        if "\x00" in self.translate_path(self.path):  # open() would raise ValueError ("embedded null byte")
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad path")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    """A request that fails (a client gone mid-answer) is one `tinysr web:` line on stderr, not socketserver's
    traceback."""

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        print(one_line(f"tinysr web: a request from {client_address[0]} failed ({type(error).__name__}: {error})"),
              file=sys.stderr)


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve the folder `root` on host:port (0: a free port) from a daemon thread; `url(server)` gives the URL and
    `server.shutdown()` stops it."""
    handler = functools.partial(_Handler, directory=str(root))
    server = _Server((host, port), handler)
    threading.Thread(target=server.serve_forever, name="tinysr-web", daemon=True).start()
    return server


def url(server: ThreadingHTTPServer) -> str:
    """The page's address, e.g. http://127.0.0.1:8765/."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
