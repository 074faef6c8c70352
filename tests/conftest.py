"""Shared fixtures: the real CLI, and real builds of musl, zlib and hello.

Sources come from the user's source cache (content-addressed and verified,
so sharing it with the main job is safe); packages are built afresh into a
per-session directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = False):
    """Run `pkgrepo ARGS` as a user would, in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", *args],
        cwd=cwd or ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
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
