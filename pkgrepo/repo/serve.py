"""`pkgrepo serve`: the repository's static files over HTTP, for one machine or a test.

GET and HEAD only; single byte ranges (206/416); strong ETags from size and
mtime with If-None-Match (304); content types for JSON and zstd; no directory
listings, no dotfiles, and no path that leaves the repository (checked after
resolving links). `timestamp.json` is served `no-cache`, everything else is
content-addressed or versioned and so `immutable`. Threads serve concurrent
downloads; SIGINT and SIGTERM shut it down cleanly.
"""

from __future__ import annotations

import re
import signal
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TYPES = {".json": "application/json", ".zst": "application/zstd"}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def make_handler(root: Path) -> type[BaseHTTPRequestHandler]:
    base = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "pkgrepo"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: a repository server's access log belongs to a real web server

        def _file(self) -> Path | None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            parts = [p for p in path.split("/") if p]
            if "\0" in path or any(p in (".", "..") or p.startswith(".") for p in parts):
                return None
            full = (base / "/".join(parts)).resolve()
            if not full.is_relative_to(base) or not full.is_file():
                return None
            return full

        def _error(self, status: HTTPStatus) -> None:
            body = f"{status.value} {status.phrase}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            full = self._file()
            if full is None:
                return self._error(HTTPStatus.NOT_FOUND)
            st = full.stat()
            etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            if self.headers.get("If-None-Match") in (etag, "*"):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            start, end, status = 0, st.st_size - 1, HTTPStatus.OK
            wanted = self.headers.get("Range")
            if wanted and (m := RANGE.match(wanted.strip())) and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), st.st_size - 1) if m.group(2) else st.st_size - 1
                else:
                    start = max(st.st_size - int(m.group(2)), 0)
                if start >= st.st_size or start > end:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{st.st_size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                status = HTTPStatus.PARTIAL_CONTENT
            length = end - start + 1 if st.st_size else 0
            self.send_response(status)
            self.send_header("Content-Type", TYPES.get(full.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(length))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            immutable = full.name != "timestamp.json" and full.name != "root.json"
            self.send_header(
                "Cache-Control", "public, max-age=31536000, immutable" if immutable else "no-cache"
            )
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{st.st_size}")
            self.end_headers()
            if self.command == "HEAD":
                return None
            self.wfile.flush()
            with open(full, "rb") as f:
                self.connection.sendfile(f, start, length)  # the kernel copies; no Python loop
            return None

        def _not_allowed(self) -> None:
            self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-transfer is normal; anything else is reported."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(root: Path, host: str, port: int, ready=lambda url: None) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = Server((host, port), make_handler(root))
    stop = threading.Event()

    def shutdown(_sig: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, shutdown) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    ready(f"http://{host}:{server.server_address[1]}/")
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        for s, h in previous.items():
            signal.signal(s, h)
