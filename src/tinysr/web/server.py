"""Serve a built site (`tinysr.web.site`) on 127.0.0.1 with the standard library: static files only.

The page computes everything in the browser; the server only hands out files. `serve` returns a running server
(a daemon thread), so tests and `tinysr web` share it; port 0 picks a free port.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    """Static files with the MIME types module scripts need, no caching (a rebuilt site shows at once), and no
    access log on stderr."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".json": "application/json", ".css": "text/css", ".html": "text/html"}

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        pass


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve the folder `root` on host:port (0: a free port) from a daemon thread; `url(server)` gives the URL and
    `server.shutdown()` stops it."""
    handler = functools.partial(_Handler, directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="tinysr-web", daemon=True).start()
    return server


def url(server: ThreadingHTTPServer) -> str:
    """The page's address, e.g. http://127.0.0.1:8765/."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
