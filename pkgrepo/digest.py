"""sha256 of files, read in chunks."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


# pkgrepo's rooms that cannot change what a build makes (commands, images, the repository, its web
# catalogue, progress).
NOT_BUILD = {"cli", "image", "repo", "web", "rollout.py", "progress.py", "__main__.py", "data", "__pycache__"}


@functools.cache
def code_digest() -> str:
    """The digest of pkgrepo's own build code: part of every build's cache key, so that a build cache
    never hands out packages that other code (another split, scan or format) would make differently."""
    return build_code_digest(Path(__file__).resolve().parent)


def build_code_digest(root: Path) -> str:
    """The digest of the build code of the pkgrepo package at `root`."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_BUILD:
            continue
        h.update(f"{rel.as_posix()}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()
