"""Client -> `pkgrepo serve`: hostile requests over raw sockets on 127.0.0.1 (finding 17).

Every request gets a response (never a dropped connection without one), idle
and stalled connections are closed, and the server's stderr never shows a
traceback (checked when it stops).
"""

from __future__ import annotations

import re
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, TRACEBACK


class Served:
    def __init__(self, repo: Path, *options: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pkgrepo", "serve", str(repo), "--port", "0", *options],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        m = re.search(r"127\.0\.0\.1:(\d+)", self.proc.stderr.readline())
        assert m
        self.port = int(m.group(1))

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return s

    def exchange(self, data: bytes) -> bytes:
        """Send `data`, read until the server closes (at most 10 s)."""
        with self.connect() as s:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    def stop(self) -> str:
        self.proc.terminate()
        assert self.proc.wait(timeout=10) == 0
        return self.proc.stderr.read()


@pytest.fixture
def served(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "metadata").mkdir(parents=True)
    (repo / "metadata" / "timestamp.json").write_text("{}\n" * 100)
    s = Served(repo, "--idle-timeout", "1", "--max-connections", "4")
    yield s
    err = s.stop()
    assert TRACEBACK not in err, err


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


CROWD = 3000
GET = b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"


@pytest.mark.parametrize(
    "value, code",
    [
        (b"bytes=" + b"9" * 5000 + b"-", 416),
        (b"bytes=-" + b"9" * 5000, 206),  # a suffix longer than the file: the whole file
        (b"bytes=0-" + b"9" * 5000, 206),  # a last position past the end is clamped (RFC 9110)
        (b"bytes=" + b"1" * 18 + b"-", 416),
        (b"bytes=10-5", 416),
        (b"bytes=5-9", 206),
        (b"bytes=x-y", 200),
        (b"\xff\xfe", 200),
    ],
)
def test_ranges_are_bounded(served: Served, value: bytes, code: int):
    assert status(served.exchange(GET + b"Range: " + value + b"\r\n\r\n")) == code


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields, body


@pytest.mark.parametrize(
    "value, first, last",
    [
        (b"bytes=0-299", 0, 299),
        (b"bytes=0-300", 0, 299),  # one past the end: clamped (RFC 9110 14.1.2)
        (b"bytes=0-1000000", 0, 299),
        (b"bytes=290-" + b"9" * 40, 290, 299),
        (b"bytes=-1000", 0, 299),  # a suffix longer than the file: all of it
        (b"bytes=299-299", 299, 299),
    ],
)
def test_a_range_is_clamped_to_the_file(served: Served, value: bytes, first: int, last: int):
    code, fields, body = split(served.exchange(GET + b"Range: " + value + b"\r\n\r\n"))
    data = ("{}\n" * 100).encode()
    assert (code, fields["Content-Range"], body) == (206, f"bytes {first}-{last}/300", data[first : last + 1])
    assert fields["Content-Length"] == str(last - first + 1)


def test_any_file_is_served_with_its_type(tmp_path: Path):
    """Nothing is special-cased: a web page beside the metadata is a file like any other, and only
    versioned or content-addressed names are immutable."""
    files = {
        "web/index.html": "text/html; charset=utf-8",
        "web/style.css": "text/css; charset=utf-8",
        "web/app.js": "text/javascript; charset=utf-8",
        "web/data.json": "application/json",
        "web/logo.svg": "image/svg+xml",
        "web/logo.png": "image/png",
        "metadata/3.snapshot.json": "application/json",
        "targets/packages/ab.x.pkg.tar.zst": "application/zstd",
        "other.bin": "application/octet-stream",
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    served = Served(tmp_path)
    try:
        for name, kind in files.items():
            code, fields, body = split(
                served.exchange(f"GET /{name} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
            )
            assert (code, fields["Content-Type"], body) == (200, kind, b"x"), name
            fixed = name.startswith(("targets/", "metadata/"))
            assert ("immutable" in fields["Cache-Control"]) == fixed, name
        assert status(served.exchange(b"GET /web/ HTTP/1.1\r\nConnection: close\r\n\r\n")) == 404
    finally:
        assert TRACEBACK not in served.stop()


@pytest.mark.parametrize(
    "request_bytes, code",
    [
        (b"GET /" + b"a" * 60_000 + b" HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /" + b"a/" * 5000 + b" HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /%00 HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /../../etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (GET + b"X: " + b"y" * 70_000 + b"\r\n\r\n", 431),
        (GET + b"X: y\r\n" * 200 + b"\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
        (b"\x00\xff\x16\x03\x01 junk\r\n\r\n", 400),
        (
            b"POST /metadata/timestamp.json HTTP/1.1\r\nConnection: close\r\nContent-Length: 9999999999\r\n\r\n",
            405,
        ),
    ],
)
def test_malformed_requests_get_a_response(served: Served, request_bytes: bytes, code: int):
    assert status(served.exchange(request_bytes)) == code


def test_idle_and_stalled_connections_are_closed(served: Served):
    with served.connect() as s:  # keep-alive, then nothing
        s.sendall(b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert status(data) == 200
        assert time.monotonic() - start < 5
    with served.connect() as s:  # half a request line, then nothing
        s.sendall(b"GET /meta")
        start = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - start < 5


def test_past_the_budget_the_longest_idle_connection_is_closed(tmp_path: Path):
    """Four idle connections fill the budget: a newcomer is served, and the oldest idle one pays."""
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "timestamp.json").write_text("{}\n")
    served = Served(tmp_path, "--idle-timeout", "30", "--max-connections", "4")
    held = [served.connect() for _ in range(4)]
    try:
        held[1].sendall(b"GET /meta")  # a partial head is idle too
        held[2].sendall(GET.replace(b"close", b"keep-alive") + b"\r\n")  # an idle keep-alive
        assert status(held[2].recv(4096)) == 200
        time.sleep(0.3)
        # idle since: held[0], held[1] (accepted), held[3] (accepted), held[2] (answered last)
        dropped = []
        for _ in range(4):
            assert status(served.exchange(GET + b"\r\n")) == 200  # the budget is full: one idle pays
            dropped += [i for i, s in enumerate(held) if i not in dropped and closed(s)]
            held.append(served.connect())  # the budget full again
            time.sleep(0.1)
        assert dropped == [0, 1, 3, 2], "idle connections were not closed oldest first"
    finally:
        for s in held:
            s.close()
        assert TRACEBACK not in served.stop()


def test_when_every_connection_is_busy_a_newcomer_gets_503(tmp_path: Path):
    """Busy is not idle: clients that stop reading a large download hold their connection (until
    the idle timeout cuts them off), and only then is a newcomer turned away."""
    repo = tmp_path / "repo"
    repo.mkdir()
    with open(repo / "big", "wb") as f:
        f.truncate(256 << 20)  # far more than the loopback's socket buffers take
    s = Served(repo, "--idle-timeout", "2", "--max-connections", "2")
    try:
        readers = [s.connect() for _ in range(2)]
        for r in readers:
            r.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status(r.recv(100)) == 200
        assert status(s.exchange(b"")) == 503
        for r in readers:
            r.close()
        time.sleep(0.5)
        assert status(s.exchange(GET + b"\r\n")) == 404  # freed: served again (no such file here)
    finally:
        assert TRACEBACK not in s.stop()


def closed(s: socket.socket) -> bool:
    """Whether the server closed `s` (what it sent before is read and dropped)."""
    poll = select.poll()
    poll.register(s, select.POLLIN)
    while poll.poll(100):
        try:
            if s.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def test_a_crowd_of_idle_connections_does_not_keep_a_client_out(tmp_path: Path):
    """Slowloris with 3,000 connections on 127.0.0.1: a thousand silent, a thousand with half a
    request head, a thousand idle keep-alive after one answer. None of them takes a worker, so a
    normal GET is answered at once while they are all held."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CROWD + 200:
        pytest.skip(f"the open-file hard limit ({hard}) is below {CROWD + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "timestamp.json").write_text("{}\n")
    served = Served(tmp_path, "--idle-timeout", "60")
    held: list[socket.socket] = []
    start = time.monotonic()
    try:
        for i in range(CROWD):
            s = served.connect()
            held.append(s)
            if i % 3 == 1:
                s.sendall(b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\nX-Slow")
            elif i % 3 == 2:
                s.sendall(b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status(s.recv(4096)) == 200
        assert time.monotonic() - start < 60
        asked = time.monotonic()
        assert status(served.exchange(GET + b"\r\n")) == 200
        assert time.monotonic() - asked < 2, "a real client waited behind idle connections"
        assert not any(closed(s) for s in held[-10:]), "the crowd was dropped instead of held"
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert TRACEBACK not in served.stop()
