"""Shared fixtures: the real CLI, and real builds of musl, zlib and hello.

Sources come from the user's source cache (content-addressed and verified,
so sharing it with the main job is safe); packages are built afresh into a
per-session directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"


TRACEBACK = "Traceback (most recent call last)"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = False,
            timeout: float | None = None):  # fmt: skip
    """Run `pkgrepo ARGS` as a user would, in a subprocess.

    A traceback on stderr fails the test (invariant 8) unless the test asked
    for one with --verbose or PKGREPO_DEBUG."""
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", *args],
        cwd=cwd or ROOT, capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    asked = "--verbose" in args or "-v" in args or env.get("PKGREPO_DEBUG", "") not in ("", "0")
    if TRACEBACK in proc.stderr and not asked:
        pytest.fail(f"pkgrepo {' '.join(args)} printed a traceback (exit {proc.returncode}):\n{proc.stderr}")
    if check and proc.returncode != 0:
        raise AssertionError(f"pkgrepo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def make_tarball(path: Path, files: dict[str, str], top: str = "src-1.0") -> str:
    """A small source tarball; returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mtime = 1_600_000_000
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mirror_url(tmp_path: Path, file: Path) -> tuple[str, str]:
    """Put `file` into the local mirror `tmp_path/mirror` (named by its sha256); return (url, sha256).

    The URL names no reachable host: with PKGREPO_MIRROR set (`mirror_env`) the mirror serves it.
    """
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    (tmp_path / "mirror").mkdir(exist_ok=True)
    shutil.copyfile(file, tmp_path / "mirror" / sha)
    return f"https://mirror.invalid/{file.name}", sha


def mirror_env(tmp_path: Path) -> dict[str, str]:
    return {"PKGREPO_MIRROR": str(tmp_path / "mirror")}


@contextmanager
def http_files(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on the loopback; yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """musl, zlib, hello and busybox built from their real sources and tested, in a fresh directory."""
    out = tmp_path_factory.mktemp("packages")
    run_cli("build", "musl", "zlib", "hello", "busybox", "--out", str(out), check=True)
    return out


@pytest.fixture(scope="session")
def image_packages(built) -> Path:
    """`built` plus lua (the Lua app's runtime and compiler), for the image tests."""
    run_cli("build", "lua", "--out", str(built), check=True)
    return built
