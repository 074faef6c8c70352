"""A root filesystem as a container runtime sees it: entries by path, links resolved inside the root.

`Tree` is both the model (every entry's kind, mode, owner, size and link target,
by canonical path) and, when it has a directory, the destination that writes
the entries there. Paths are resolved the way a runtime places layer members
(containerd's in-root resolution): `..` stops at the root, an absolute link
target starts again at the root, links on the way are followed inside the root
(at most `MAX_HOPS`), so `../bin/sh` lands at `bin/sh` and `bin/sh` under a
`bin -> usr/libexec` link lands at `usr/libexec/sh`. Nothing is ever resolved
against the host.

Writes go through directory descriptors opened component by component with
O_NOFOLLOW, as the rootfs destination does for installs (`pkgrepo.package.rootfs`):
the canonical path of an entry has only real directories above it, so no write
goes through a link. Only directories, regular files (0644 or 0755 on disk),
symlinks and hard links are made; devices, FIFOs and sockets are recorded in
the model only. The real mode, owner and type live in the model.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pkgrepo.errors import PkgrepoError
from pkgrepo.image.safeio import DIR_FLAGS
from pkgrepo.package.meta import FileKind

MAX_HOPS = 40  # links followed while resolving one path (the kernel's own limit)
MAX_DEPTH = 256  # directories above a member; real images stay far below


@dataclass(frozen=True)
class Entry:
    kind: FileKind | Literal["other"]  # other: a device, fifo or socket a layer may hold
    mode: int  # permission bits with setuid, setgid and sticky
    size: int = 0
    target: str = ""  # a symlink's target, as written
    uid: int = 0
    gid: int = 0


class Unresolvable(Exception):
    """A path that a runtime could not resolve either (a loop, a file where a directory is needed)."""


def canonical(name: str) -> str:
    """A member name as a runtime places it: relative to the root, `..` stopped at the root."""
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


class Tree:
    """Entries by canonical path; written below `root` when it is given (a fresh, private directory)."""

    def __init__(self, root: Path | None = None):
        self.entries: dict[str, Entry] = {"": Entry("dir", 0o755)}
        self.root = root
        self._fds: dict[str, int] = {}
        if root is not None:
            self._fds[""] = os.open(root, DIR_FLAGS)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    # --- resolution -------------------------------------------------------------------------------

    def resolve(self, path: str, follow: bool = True) -> str:
        """The canonical path `path` reaches (its last component followed when `follow`); missing
        components are taken as they are. Unresolvable for a loop or a non-directory on the way."""
        parts = deque(p for p in path.split("/"))
        cur: list[str] = []
        hops = 0
        while parts:
            p = parts.popleft()
            if p in ("", "."):
                continue
            if p == "..":
                if cur:
                    cur.pop()
                continue
            here = "/".join([*cur, p])
            e = self.entries.get(here)
            if e is not None and e.kind == "symlink" and (parts or follow):
                hops += 1
                if hops > MAX_HOPS:
                    raise Unresolvable(f"/{path}: too many levels of symbolic links")
                if e.target.startswith("/"):
                    cur = []
                parts.extendleft(reversed(e.target.split("/")))
                continue
            if e is not None and e.kind != "dir" and any(x not in ("", ".") for x in parts):
                raise Unresolvable(f"/{path}: /{here} is not a directory")
            cur.append(p)
        return "/".join(cur)

    def find(self, path: str, follow: bool = True) -> tuple[str, Entry] | None:
        """The canonical path and entry `path` reaches, or None when it reaches nothing."""
        try:
            rel = self.resolve(path, follow)
        except Unresolvable:
            return None
        e = self.entries.get(rel)
        return None if e is None else (rel, e)

    def children(self, directory: str) -> list[str]:
        prefix = directory + "/" if directory else ""
        return [k for k in self.entries if k.startswith(prefix) and k and "/" not in k[len(prefix) :]]

    def below(self, path: str) -> list[str]:
        return [k for k in self.entries if k == path or k.startswith(path + "/")]

    # --- writing ------------------------------------------------------------------------------------

    def place(self, name: str) -> str:
        """Where a layer member `name` goes: its parent resolved inside the root, made when missing."""
        rel = canonical(name)
        if rel == "":
            return ""
        parent, _, base = rel.rpartition("/")
        where = self.resolve(parent) if parent else ""
        if where.count("/") >= MAX_DEPTH:
            raise Unresolvable(f"deeper than {MAX_DEPTH} directories")
        self._mkdirs(where)
        return f"{where}/{base}" if where else base

    def _mkdirs(self, rel: str) -> None:
        """Make directory `rel` and its missing parents (parents first, never recursing per level)."""
        missing = []
        while rel and not (rel in self.entries and self.entries[rel].kind == "dir"):
            if rel in self.entries:
                raise Unresolvable(f"/{rel} is not a directory")
            missing.append(rel)
            rel = parent_of(rel)
        for d in reversed(missing):
            self.entries[d] = Entry("dir", 0o755)
            if self.root is not None:
                self._os(d, lambda d=d: os.mkdir(d.rpartition("/")[2], 0o755, dir_fd=self._dir(parent_of(d))))

    def _dir(self, rel: str) -> int:
        """A descriptor of directory `rel` of the tree, opened component by component, no-follow."""
        if rel in self._fds:
            return self._fds[rel]
        todo = []
        while rel not in self._fds:
            todo.append(rel)
            rel = parent_of(rel)
        for d in reversed(todo):
            self._fds[d] = os.open(d.rpartition("/")[2], DIR_FLAGS, dir_fd=self._fds[parent_of(d)])
        return self._fds[todo[0]]

    def _os(self, rel: str, action):
        try:
            return action()
        except OSError as e:
            if e.errno in (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL):
                raise Unresolvable(f"cannot be written ({e.strerror})") from None
            raise PkgrepoError(f"unpacking /{rel[:200]} into {self.root} failed: {e.strerror}") from None

    def remove(self, rel: str) -> None:
        """Remove `rel` and everything below it (a whiteout, or a member replacing it)."""
        old = self.entries.get(rel)
        if rel == "" or old is None:
            return
        kind = old.kind
        for k in self.below(rel) if kind == "dir" else [rel]:
            del self.entries[k]
            if k in self._fds:
                os.close(self._fds.pop(k))
        if self.root is None or kind == "other":
            return
        pfd, name = self._dir(parent_of(rel)), rel.rpartition("/")[2]
        if kind == "dir":
            self._os(rel, lambda: shutil.rmtree(name, dir_fd=pfd))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=pfd)

    def add_dir(self, rel: str, entry: Entry) -> None:
        old = self.entries.get(rel)
        if old is not None and old.kind != "dir":
            self.remove(rel)
        if old is None or old.kind != "dir":
            self._mkdirs(rel)
        self.entries[rel] = entry

    def add_symlink(self, rel: str, entry: Entry) -> None:
        self.remove(rel)
        self.entries[rel] = entry
        if self.root is not None:
            self._os(
                rel,
                lambda: os.symlink(entry.target, rel.rpartition("/")[2], dir_fd=self._dir(parent_of(rel))),
            )

    def add_other(self, rel: str, entry: Entry) -> None:
        self.remove(rel)
        self.entries[rel] = entry

    def add_file(self, rel: str, entry: Entry, data: Iterable[bytes]) -> None:
        self.remove(rel)
        self.entries[rel] = entry
        if self.root is None:
            for _ in data:
                pass
            return
        name, pfd = rel.rpartition("/")[2], self._dir(parent_of(rel))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._os(rel, lambda: os.open(name, flags, 0o600, dir_fd=pfd))
        try:
            for block in data:
                view = memoryview(block)
                while view:
                    view = view[self._os(rel, lambda v=view: os.write(fd, v)) :]
            os.fchmod(fd, 0o755 if entry.mode & 0o111 else 0o644)
        finally:
            os.close(fd)

    def add_hardlink(self, rel: str, target: str, mode: int | None = None) -> Entry:
        """A hard link to the regular file `target` reaches (resolved inside the root); its entry.

        With `mode`, the link's own header mode is applied to the file both names share, as
        moby and containerd do (they chmod the path of a hard-link entry too)."""
        found = self.find(canonical(target))
        if found is None or found[1].kind != "file":
            raise Unresolvable(f"hard link /{rel} -> /{canonical(target)}: no regular file there")
        src, entry = found
        if mode is not None and mode != entry.mode:
            entry = replace(entry, mode=mode)
            for name, e in self.entries.items():
                if e is found[1]:
                    self.entries[name] = entry
            self.entries[src] = entry
        if src == rel:
            return entry
        self.remove(rel)
        self.entries[rel] = entry
        if self.root is not None:
            self._os(
                rel,
                lambda: os.link(
                    src.rpartition("/")[2],
                    rel.rpartition("/")[2],
                    src_dir_fd=self._dir(parent_of(src)),
                    dst_dir_fd=self._dir(parent_of(rel)),
                    follow_symlinks=False,
                ),
            )
        return entry
