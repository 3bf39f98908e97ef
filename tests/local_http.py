"""A local HTTP file server for download tests (127.0.0.1, no network).

`serve(files)` starts a `ThreadingHTTPServer` on a free port that serves
in-memory files by path, with HTTP Range support (206 / 416) like the
publishers' servers; per-path switches make it cut a response short once
(`cut_once`: the connection drops after `CUT` bytes) or ignore Range
(`ignore_range`). Every request's path and headers are recorded in
`requests`; `base` is `http://127.0.0.1:<port>`.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import socket
import threading
from collections.abc import Iterator, Mapping

CUT = 100_000  # Bytes sent before a cut connection.


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # Quiet test output.
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, dict(self.headers)))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        found = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if found and self.path not in server.ignore_range:
            start = int(found.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"
            )
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in server.cut_once:
            server.cut_once.discard(self.path)
            self.wfile.write(body[start : start + server.cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # Dropped.
            return
        self.wfile.write(body[start:])


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # A client that hangs up early (a size mismatch) is expected.


@contextlib.contextmanager
def serve(files: Mapping[str, bytes], cut: int = CUT) -> Iterator[Server]:
    """Serves `files` (URL path -> bytes) until the block ends.

    Args:
      files: e.g. `{"/data/x.tgz": b"..."}`; the mapping may be changed
        while serving.
      cut: bytes sent before a `cut_once` connection drops.
    """
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files = dict(files)
    httpd.requests = []
    httpd.cut_once = set()
    httpd.ignore_range = set()
    httpd.cut = cut
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
