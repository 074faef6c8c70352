"""An assembled root filesystem as a sorted list of typed entries with numeric owners.

Everything on disk was written by pkgrepo (packages and base files), so the
owner of an entry is root unless the base files say otherwise, and the modes
are the packages' own (directories are always 0755 in packages, whatever the
umask). Reading never follows a link.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.package.meta import FileKind


@dataclass(frozen=True)
class Node:
    path: str  # relative to the root, no leading slash
    kind: FileKind
    mode: int  # permission bits, including setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    target: str | None
    source: Path  # where the bytes are on disk

    def read(self) -> bytes:
        fd = os.open(self.source, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def same_as(self, other: Node) -> bool:
        head = (self.kind, self.mode, self.uid, self.gid, self.size, self.target)
        if head != (other.kind, other.mode, other.uid, other.gid, other.size, other.target):
            return False
        return self.kind != "file" or self.read() == other.read()


@dataclass(frozen=True)
class Attrs:
    """What the base files set on an entry they write: mode and numeric owner."""

    mode: int
    uid: int = 0
    gid: int = 0


def walk(root: Path, attrs: dict[str, Attrs]) -> dict[str, Node]:
    """Every entry below `root`, by relative path (sorted)."""
    out: dict[str, Node] = {}

    def visit(directory: Path, rel: str) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            path = f"{rel}/{e.name}" if rel else e.name
            st = e.stat(follow_symlinks=False)
            a = attrs.get(path)
            if stat.S_ISDIR(st.st_mode):
                out[path] = Node(
                    path,
                    "dir",
                    a.mode if a else 0o755,
                    a.uid if a else 0,
                    a.gid if a else 0,
                    0,
                    None,
                    Path(e.path),
                )
                visit(Path(e.path), path)
            elif stat.S_ISLNK(st.st_mode):
                out[path] = Node(
                    path,
                    "symlink",
                    0o777,
                    a.uid if a else 0,
                    a.gid if a else 0,
                    0,
                    os.readlink(e.path),
                    Path(e.path),
                )
            elif stat.S_ISREG(st.st_mode):
                mode = a.mode if a else stat.S_IMODE(st.st_mode)
                out[path] = Node(
                    path, "file", mode, a.uid if a else 0, a.gid if a else 0, st.st_size, None, Path(e.path)
                )

    visit(root, "")
    return dict(sorted(out.items()))
