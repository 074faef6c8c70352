"""A client of a served repository with its own trusted state, and snapshots of the root it installs into."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.helpers.cli import run_cli


class Client:
    """`pkgrepo` as a client with its own cache (its own trusted state)."""

    def __init__(self, url: str, trust: Path, cache: Path, root: Path):
        self.url, self.trust, self.cache, self.root = url, trust, cache, root

    def run(self, *args: str):
        return run_cli(*args, env={"PKGREPO_CACHE": str(self.cache)})

    def install(self, *names: str):
        return self.run(
            "install", "--repo", self.url, "--trust", str(self.trust), "--root", str(self.root), *names
        )

    def upgrade(self):
        return self.run("upgrade", "--repo", self.url, "--trust", str(self.trust), "--root", str(self.root))


def tree(root: Path) -> dict[str, str]:
    """Everything in a root: path -> content digest (or link target)."""
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out
