"""Client -> `pkgrepo serve`: hostile requests over raw sockets on 127.0.0.1 (finding 17).

Every request gets a response (never a dropped connection without one), idle
and stalled connections are closed, and the server's stderr never shows a
traceback (checked when it stops).
"""

from __future__ import annotations

import re
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


GET = b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"


@pytest.mark.parametrize(
    "value, code",
    [
        (b"bytes=" + b"9" * 5000 + b"-", 416),
        (b"bytes=-" + b"9" * 5000, 416),
        (b"bytes=0-" + b"9" * 5000, 416),
        (b"bytes=" + b"1" * 18 + b"-", 416),
        (b"bytes=10-5", 416),
        (b"bytes=5-9", 206),
        (b"bytes=x-y", 200),
        (b"\xff\xfe", 200),
    ],
)
def test_ranges_are_bounded(served: Served, value: bytes, code: int):
    assert status(served.exchange(GET + b"Range: " + value + b"\r\n\r\n")) == code


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


def test_connections_past_the_cap_get_503(served: Served):
    held = [served.connect() for _ in range(4)]
    try:
        time.sleep(0.3)
        assert status(served.exchange(b"")) == 503
    finally:
        for s in held:
            s.close()
    time.sleep(1.5)  # the idle timeout frees the slots
    assert status(served.exchange(GET + b"\r\n")) == 200


def test_a_trickled_request_head_is_cut_off_and_frees_its_slot(served: Served):
    """Slowloris: every slot held by a client sending one header byte at a time (each within the
    idle timeout). The whole head must arrive within the idle timeout, so the slots free up."""
    held = [served.connect() for _ in range(4)]
    try:
        start = time.monotonic()
        closed = set()
        while len(closed) < len(held) and time.monotonic() - start < 8:
            for i, s in enumerate(held):
                if i in closed:
                    continue
                try:
                    s.sendall(b"X")
                except OSError:
                    closed.add(i)
            time.sleep(0.3)
        assert len(closed) == len(held), "a trickling client kept its connection"
        assert time.monotonic() - start < 5
    finally:
        for s in held:
            s.close()
    assert status(served.exchange(GET + b"\r\n")) == 200
