"""`pkgrepo serve`: the repository's static files over HTTP, for one machine or a test.

GET and HEAD only; single byte ranges (206/416); strong ETags from size and
mtime with If-None-Match (304); content types for JSON and zstd; no directory
listings, no dotfiles, and no path that leaves the repository (checked after
resolving links). `timestamp.json` is served `no-cache`, everything else is
content-addressed or versioned and so `immutable`. Threads serve concurrent
downloads; SIGINT and SIGTERM shut it down cleanly.

A client is hostile until proven otherwise: header lines and their number are
bounded by http.server (431 past 64 KiB or 100 headers), a range bound longer
than 18 digits is unsatisfiable (416), a connection idle for `idle_timeout`
seconds is closed, at most `max_connections` are served at once (503 past
that), and no request ever prints a traceback: an unexpected error is one line
on stderr and a 500 when nothing was sent yet.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TYPES = {".json": "application/json", ".zst": "application/zstd"}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_DIGITS = 18  # a range bound past 10**18 bytes is unsatisfiable, and int() of it is not free
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 128
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"


def make_handler(root: Path, idle_timeout: float = IDLE_TIMEOUT) -> type[BaseHTTPRequestHandler]:
    base = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "pkgrepo"
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout  # per receive: an idle keep-alive connection is closed after it
        default_request_version = "HTTP/1.0"  # errors for garbage get a status line (no HTTP/0.9)
        error_message_format = "%(code)d %(message)s\n"
        error_content_type = "text/plain"
        responded = False

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: a repository server's access log belongs to a real web server

        def send_response(self, code: int, message: str | None = None) -> None:
            self.responded = True
            super().send_response(code, message)

        def parse_request(self) -> bool:
            ok = super().parse_request()  # reads the headers
            self._head_deadline.cancel()  # the request head arrived in time
            return ok

        def _cut(self) -> None:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def handle_one_request(self) -> None:
            """http.server's request loop, with every unexpected error one line and a 500.

            The request line and headers must arrive within `idle_timeout` in all, not only
            between two bytes: a client trickling its head is cut off, so slow clients cannot
            hold every connection slot."""
            self.responded = False
            self._head_deadline = threading.Timer(idle_timeout, self._cut)
            self._head_deadline.daemon = True
            self._head_deadline.start()
            try:
                super().handle_one_request()
            except OSError:
                self.close_connection = True  # the client went away or stalled: nothing to tell
            except Exception as e:
                self.close_connection = True
                print(
                    f"pkgrepo serve: {self.client_address[0]}: {self.command} {self.path!r}: "
                    f"internal error: {type(e).__name__}: {e}",
                    file=sys.stderr,
                )
                if not self.responded:
                    with contextlib.suppress(OSError):
                        self._error(HTTPStatus.INTERNAL_SERVER_ERROR)
                        self.wfile.flush()
            finally:
                self._head_deadline.cancel()

        def _file(self) -> Path | None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            parts = [p for p in path.split("/") if p]
            if "\0" in path or any(p in (".", "..") or p.startswith(".") for p in parts):
                return None
            try:
                full = (base / "/".join(parts)).resolve()
                if not full.is_relative_to(base) or not full.is_file():
                    return None
            except (OSError, RuntimeError):  # a name too long, a link loop: not a file we serve
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
                if max(len(m.group(1)), len(m.group(2))) > MAX_DIGITS:
                    return self._unsatisfiable(st.st_size)
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), st.st_size - 1) if m.group(2) else st.st_size - 1
                else:
                    start = max(st.st_size - int(m.group(2)), 0)
                if start >= st.st_size or start > end:
                    return self._unsatisfiable(st.st_size)
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

        def _unsatisfiable(self, size: int) -> None:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()

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

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int = MAX_CONNECTIONS,
    ):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):  # a few bytes into an empty send buffer: never blocks
                request.send(BUSY, socket.MSG_DONTWAIT)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up or stalls is normal; anything else is one line, never a traceback."""
        e = sys.exc_info()[1]
        if not isinstance(e, OSError):
            print(
                f"pkgrepo serve: {client_address}: internal error: {type(e).__name__}: {e}", file=sys.stderr
            )


def serve(
    root: Path,
    host: str,
    port: int,
    ready=lambda url: None,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = Server((host, port), make_handler(root, idle_timeout), max_connections)
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
