"""`pkgrepo serve`: the files of a directory over HTTP/1.1, served the way nginx serves them.

One asyncio event loop holds every connection; a connection costs a worker
only while a complete request is being answered. Waiting for a request head
(a fresh connection, a partial head, an idle keep-alive connection) costs a
socket and a few bytes, so the connection budget (`max_connections`, 4096) is
far larger than the worker budget (`workers`, 64). When the budget is full, the
connection idle for longest is closed to make room (as nginx reuses its
connections); only when every connection is being answered does a newcomer get
503. The soft limit on open files is raised to the hard limit at start, and
the budget is lowered to what that limit allows (said on stderr).

A client is hostile until proven otherwise: the request head is bounded in
size (`pkgrepo.repo.httphead`) and must arrive whole within `idle_timeout`
seconds of the connection becoming idle (a client trickling its head is cut
off); a response whose client stops reading for `idle_timeout` is cut off;
GET and HEAD only; which bytes of which file (`pkgrepo.repo.static`) is
decided without trusting the path. No request prints a traceback: an
unexpected error is one line on stderr and a 500 when nothing was sent yet.
SIGINT and SIGTERM shut the server down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import queue
import resource
import signal
import socket
import stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path

from pkgrepo.errors import PkgrepoError
from pkgrepo.repo.httphead import LINE_MAX, BadHead, Head, read_head
from pkgrepo.repo.static import cache_control, content_type, resolve, span

IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 4096
WORKERS = 64
SPARE_FILES = 64  # descriptors kept for the listener, the files being sent and the interpreter
INLINE = 256 << 10  # a body this small is read and written with the head
CHUNK = 1 << 20  # sendfile in pieces, each of which the client must take within the idle timeout
BACKLOG = 4096
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
ALLOWED = ("GET", "HEAD")
REFUSED = ("POST", "PUT", "DELETE", "PATCH")  # 405 with Allow; any other method 501


def raise_open_files(wanted: int) -> int:
    """Raise the soft limit on open files to the hard limit; the connections it leaves room for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - SPARE_FILES))


class Connection:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.peer = (writer.get_extra_info("peername") or ("?",))[0]

    def drop(self) -> None:
        self.writer.transport.abort()


class Budget:
    """Every open connection, and which are idle, oldest idle first."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open: set[Connection] = set()
        self.idle: OrderedDict[Connection, None] = OrderedDict()

    def admit(self, conn: Connection) -> bool:
        """Make room for `conn`, closing the connection idle for longest; False when all are busy."""
        if len(self.open) >= self.limit:
            if not self.idle:
                return False
            oldest, _ = self.idle.popitem(last=False)
            self.open.discard(oldest)
            oldest.drop()
        self.open.add(conn)
        return True

    def waiting(self, conn: Connection) -> None:
        self.idle[conn] = None  # newest last

    def working(self, conn: Connection) -> None:
        self.idle.pop(conn, None)

    def gone(self, conn: Connection) -> None:
        self.idle.pop(conn, None)
        self.open.discard(conn)


class Server:
    def __init__(self, root: Path, idle_timeout: float, max_connections: int, workers: int):
        self.base = root.resolve()
        self.idle_timeout = idle_timeout
        self.budget = Budget(max_connections)
        self.workers = asyncio.Semaphore(workers)

    async def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer)
        if not self.budget.admit(conn):
            with contextlib.suppress(OSError):
                writer.write(BUSY)
            writer.close()  # after the few bytes above, which fit any empty send buffer
            return
        try:
            await self.session(conn, reader)
        except (OSError, asyncio.IncompleteReadError):  # TimeoutError is an OSError
            pass  # the client went away or stalled: nothing to tell
        finally:
            self.budget.gone(conn)
            writer.transport.abort()

    async def session(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        """Requests on one connection until it closes, stalls or asks to close."""
        while True:
            self.budget.waiting(conn)
            try:
                async with asyncio.timeout(self.idle_timeout):
                    head = await read_head(reader)
            except BadHead as e:
                self.budget.working(conn)
                await self.send_error(conn, "GET", e.status, close=True)
                return
            if head is None:
                return
            self.budget.working(conn)
            async with self.workers:
                keep = await self.answer(conn, head)
            if not keep:
                return

    async def answer(self, conn: Connection, head: Head) -> bool:
        """Answer one request; whether the connection stays open for another."""
        sent = False

        def mark() -> None:
            nonlocal sent
            sent = True

        try:
            return await self.respond(conn, head, mark)
        except OSError:  # TimeoutError included
            return False
        except Exception as e:
            print(
                f"pkgrepo serve: {conn.peer}: {head.method} {head.target[:200]!r}: "
                f"internal error: {type(e).__name__}: {e}",
                file=sys.stderr,
            )
            if not sent:
                with contextlib.suppress(OSError):
                    await self.send_error(conn, head.method, HTTPStatus.INTERNAL_SERVER_ERROR, close=True)
            return False

    async def respond(self, conn: Connection, head: Head, mark: Callable[[], None]) -> bool:
        keep = head.keep_alive
        if head.method not in ALLOWED:
            status = HTTPStatus.METHOD_NOT_ALLOWED if head.method in REFUSED else HTTPStatus.NOT_IMPLEMENTED
            mark()
            await self.send(conn, status, {"Allow": ", ".join(ALLOWED), "Content-Length": "0"}, close=True)
            return False
        full = resolve(self.base, head.target)
        if full is None:
            mark()
            await self.send_error(conn, head.method, HTTPStatus.NOT_FOUND, close=not keep)
            return keep
        # Opened once, without blocking (a FIFO swapped in after the check cannot stall the loop),
        # and checked again: what is stat'ed is what is sent.
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:  # gone, unreadable or replaced by a link since the check
            mark()
            await self.send_error(conn, head.method, HTTPStatus.NOT_FOUND, close=not keep)
            return keep
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                mark()
                await self.send_error(conn, head.method, HTTPStatus.NOT_FOUND, close=not keep)
                return keep
            etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            common = {"ETag": etag, "Cache-Control": cache_control(self.base, full)}
            if head.headers.get("if-none-match") in (etag, "*"):
                mark()
                await self.send(conn, HTTPStatus.NOT_MODIFIED, {**common, "Content-Length": "0"}, not keep)
                return keep
            part = span(st.st_size, head.headers.get("range"))
            if part is None:
                mark()
                fields = {"Content-Range": f"bytes */{st.st_size}", "Content-Length": "0"}
                await self.send(conn, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, fields, not keep)
                return keep
            fields = {
                "Content-Type": content_type(full),
                "Content-Length": str(part.length),
                "Accept-Ranges": "bytes",
                "X-Content-Type-Options": "nosniff",
                **common,
            }
            if part.partial:
                fields["Content-Range"] = f"bytes {part.start}-{part.start + part.length - 1}/{st.st_size}"
            status = HTTPStatus.PARTIAL_CONTENT if part.partial else HTTPStatus.OK
            mark()
            body = head.method == "GET" and part.length
            if body and part.length <= INLINE:  # small (metadata): one write with the head
                data = os.pread(f.fileno(), part.length, part.start)
                if len(data) != part.length:
                    raise OSError("the file shrank while it was sent")
                await self.send(conn, status, fields, not keep, data)
            else:
                await self.send(conn, status, fields, not keep)
                if body:
                    await self.send_file(conn, f, part.start, part.length)
        return keep

    async def send(
        self, conn: Connection, status: HTTPStatus, fields: dict[str, str], close: bool, body: bytes = b""
    ) -> None:
        lines = [f"HTTP/1.1 {status.value} {status.phrase}", "Server: pkgrepo", f"Date: {now()}"]
        lines += [f"{k}: {v}" for k, v in fields.items()]
        if close:
            lines.append("Connection: close")
        conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.drain(conn)

    async def drain(self, conn: Connection) -> None:
        """Wait, at most the idle timeout, for what the socket did not take at once."""
        if conn.writer.transport.get_write_buffer_size():
            async with asyncio.timeout(self.idle_timeout):
                await conn.writer.drain()

    async def send_error(self, conn: Connection, method: str, status: HTTPStatus, close: bool) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        fields = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
        await self.send(conn, status, fields, close, body if method != "HEAD" else b"")

    async def send_file(self, conn: Connection, f, start: int, length: int) -> None:
        """The kernel copies (sendfile); each piece must be taken within the idle timeout."""
        loop = asyncio.get_running_loop()
        end = start + length
        while start < end:
            n = min(CHUNK, end - start)
            async with asyncio.timeout(self.idle_timeout):
                sent = await loop.sendfile(conn.writer.transport, f, start, n)
            if sent < n:
                raise OSError("the file shrank while it was sent")
            start += n


_date: list = [0, ""]  # (second, its Date field): formatted once a second


def now() -> str:
    second = int(time.time())
    if second != _date[0]:
        _date[:] = [second, email.utils.formatdate(second, usegmt=True)]
    return _date[1]


def _quiet(_loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's own errors as one line (a client's socket error is normal and silent)."""
    e = context.get("exception")
    if isinstance(e, OSError | asyncio.CancelledError):
        return
    print(f"pkgrepo serve: internal error: {context.get('message')}: {e!r}", file=sys.stderr)


async def _serve(
    root: Path,
    host: str,
    port: int,
    ready: Callable[[str], None],
    idle_timeout: float,
    max_connections: int,
    workers: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set; without one, until SIGINT or SIGTERM (the main thread only)."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet)
    server = Server(root, idle_timeout, max_connections, workers)
    listener = await asyncio.start_server(
        server.connected, host, port, limit=LINE_MAX + 2, backlog=BACKLOG, reuse_address=True
    )
    signals = (signal.SIGINT, signal.SIGTERM) if stop is None else ()
    stop = stop or asyncio.Event()
    for s in signals:
        loop.add_signal_handler(s, stop.set)
    try:
        sock = listener.sockets[0]
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
        ready(f"http://{shown}:{bound}/")
        await stop.wait()
    finally:
        for s in signals:
            loop.remove_signal_handler(s)
        listener.close()
        for conn in list(server.budget.open):
            conn.drop()
        await listener.wait_closed()


def serve(
    root: Path,
    host: str,
    port: int,
    ready: Callable[[str], None] = lambda url: None,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    workers: int = WORKERS,
    note: Callable[[str], None] = lambda message: None,
) -> None:
    """Serve until SIGINT or SIGTERM; `ready` gets the URL (first), `note` what the limits changed."""
    budget = raise_open_files(max_connections + workers)
    notes = []
    if budget < max_connections + workers:
        max_connections = max(1, budget - workers)
        notes.append(f"the open-file limit allows {max_connections} connections; raise `ulimit -Hn` for more")

    def started(url: str) -> None:
        ready(url)
        for message in notes:
            note(message)

    asyncio.run(_serve(root, host, port, started, idle_timeout, max_connections, workers))


@contextlib.contextmanager
def serving(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """`root` served on a free loopback port from a background thread while the block runs;
    yields its URL. Rollout reads the repository it has just published through this, with the
    verifying client, as any client reads it."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started: queue.Queue[str | BaseException] = queue.Queue()

    def run() -> None:
        try:
            loop.run_until_complete(
                _serve(root, host, 0, started.put, IDLE_TIMEOUT, MAX_CONNECTIONS, WORKERS, stop)
            )
        except BaseException as e:  # handed to the waiting side: a bind that failed
            started.put(e)

    thread = threading.Thread(target=run, name=f"serve {root}", daemon=True)
    thread.start()
    first = started.get()
    try:
        if isinstance(first, BaseException):
            raise PkgrepoError(f"{root}: cannot serve it on {host}: {first}") from None
        yield first
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        loop.close()
