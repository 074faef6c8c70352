"""Source downloads have a total deadline and a size cap: a trickling or endless server is cut off."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

RECIPE = """package:
  name: probe
  version: "1.0"
  description: probe
  license: MIT
sources:
  - url: {url}
    sha256: "{sha}"
pipeline:
  - runs: "true"
"""


class Hostile:
    """An HTTP server on 127.0.0.1 that trickles one byte at a time or sends bytes without end (bounded)."""

    def __init__(self, mode: str):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(30)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/src.tar.gz"
        self.mode = mode
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            deadline = time.monotonic() + 60
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    if self.mode == "trickle":
                        conn.sendall(b"x")
                        time.sleep(0.5)
                    else:
                        conn.sendall(b"\0" * 65536)
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize(
    ("mode", "env", "words"),
    [
        ("trickle", {"PKGREPO_SOURCE_TIMEOUT": "2"}, "not complete within 2s (PKGREPO_SOURCE_TIMEOUT)"),
        (
            "endless",
            {"PKGREPO_SOURCE_MAX_BYTES": "1000000"},
            "larger than 1000000 bytes (PKGREPO_SOURCE_MAX_BYTES)",
        ),
    ],
)
def test_hostile_source_server_is_cut_off(tmp_path: Path, mode: str, env: dict[str, str], words: str):
    server = Hostile(mode)
    try:
        recipes = tmp_path / "recipes"
        recipes.mkdir()
        (recipes / "probe.yaml").write_text(RECIPE.format(url=server.url, sha="0" * 64))
        cache = tmp_path / "cache"
        start = time.monotonic()
        proc = run_cli(
            "build",
            "probe",
            "--recipes",
            str(recipes),
            "--out",
            str(tmp_path / "out"),
            "--cache",
            str(cache),
            env=env,
        )
        assert time.monotonic() - start < 30
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not [p for p in (cache / "sha256").iterdir() if p.name.startswith(".dl")]
    finally:
        server.close()


def test_bad_limit_is_bad_input(tmp_path: Path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "probe.yaml").write_text(RECIPE.format(url="http://127.0.0.1:9/src.tar.gz", sha="0" * 64))
    proc = run_cli(
        "build",
        "probe",
        "--recipes",
        str(recipes),
        "--out",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "cache"),
        env={"PKGREPO_SOURCE_TIMEOUT": "soon"},
    )
    assert proc.returncode == 2 and "PKGREPO_SOURCE_TIMEOUT='soon'" in proc.stderr, proc.stderr
