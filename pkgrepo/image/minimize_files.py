"""File-level minimization of the prod image.

Two passes over the installed packages' files:

1. Globs: documentation, man and info pages, locales, headers, static and
   libtool libraries and pkg-config files are dropped, plus the spec's
   `exclude`; the spec's `keep` globs win over both.
2. Shared libraries: a DT_NEEDED walk (pyelftools) from every ELF file kept
   that is not a shared library, and from every ELF file of a package the spec
   names as a root, through SONAMEs, file names and symlinks; shared libraries
   it never reaches are dropped, with the symlinks to them. An image with no
   executable at all keeps its libraries (the application arrives later, in a
   Dockerfile's COPY).

Directories left empty by the removals are removed too.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pkgrepo.elf import read_dynamic as _read_elf

DEFAULT_EXCLUDE = (
    "usr/share/doc/**",
    "usr/share/man/**",
    "usr/share/info/**",
    "usr/share/locale/**",
    "usr/lib/locale/**",
    "usr/share/i18n/**",
    "usr/include/**",
    "usr/local/include/**",
    "**/*.a",
    "**/*.la",
    "usr/lib/pkgconfig/**",
    "usr/share/pkgconfig/**",
    "usr/share/aclocal/**",
    "usr/share/gtk-doc/**",
)
SO_RE = re.compile(r"\.so(\.[0-9]+)*$")


@dataclass(frozen=True)
class Removed:
    path: str
    package: str
    size: int
    reason: str  # the glob that matched, or "unused shared library"


@dataclass(frozen=True)
class Report:
    removed: list[Removed]

    @property
    def bytes_saved(self) -> int:
        return sum(r.size for r in self.removed)

    def to_dict(self) -> dict[str, object]:
        return {
            "bytes_saved": self.bytes_saved,
            "removed": [
                {"path": "/" + r.path, "package": r.package, "size": r.size, "reason": r.reason}
                for r in self.removed
            ],
        }


@cache
def glob_re(pattern: str) -> re.Pattern[str]:
    """`**` any number of directories, `*` and `?` within one path component; leading `/` optional."""
    out = []
    i = 0
    pattern = pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: list[str] | tuple[str, ...]) -> str | None:
    """The first pattern matching `path` or one of its parent directories."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for p in patterns:
        rx = glob_re(p)
        if any(rx.match(c) for c in candidates):
            return p
    return None


def _resolve(root: Path, rel: str, limit: int = 40) -> str | None:
    """Follow symlinks inside the image (absolute targets are the image's root) to a relative path."""
    for _ in range(limit):
        p = root / rel
        if not p.is_symlink():
            return rel if p.exists() else None
        target = os.readlink(p)
        joined = (
            target.lstrip("/") if target.startswith("/") else posixpath.join(posixpath.dirname(rel), target)
        )
        rel = posixpath.normpath(joined)
        if rel.startswith(".."):
            return None
    return None


def minimize_files(
    root: Path, owned: dict[str, list[str]], root_packages: set[str], keep: list[str], exclude: list[str]
) -> Report:
    """Remove from `root` what prod does not need; `owned` maps package names to their files."""
    owner = {f: name for name, files in owned.items() for f in files}
    patterns = [*DEFAULT_EXCLUDE, *exclude]
    removed: list[Removed] = []

    def drop(rel: str, reason: str) -> None:
        p = root / rel
        size = 0 if p.is_symlink() else p.stat().st_size
        p.unlink()
        removed.append(Removed(rel, owner.get(rel, ""), size, reason))

    links = [rel for rel in sorted(owner) if (root / rel).is_symlink() and _resolve(root, rel) is not None]
    for rel in sorted(owner):
        if not os.path.lexists(root / rel) or matches(rel, keep):
            continue
        hit = matches(rel, patterns)
        if hit:
            drop(rel, hit)

    present = [rel for rel in sorted(owner) if os.path.lexists(root / rel)]
    elves = {rel: e for rel in present if not (root / rel).is_symlink() and (e := _read_elf(root / rel))}
    libs = {rel for rel, e in elves.items() if e.soname or SO_RE.search(rel)}
    executables = [rel for rel in elves if rel not in libs]
    if executables:
        by_name: dict[str, str] = {}
        for rel in libs:
            by_name.setdefault(posixpath.basename(rel), rel)
            if elves[rel].soname:
                by_name.setdefault(elves[rel].soname or "", rel)
        for rel in present:
            if (root / rel).is_symlink() and (target := _resolve(root, rel)) in libs:
                by_name.setdefault(posixpath.basename(rel), target)
        start = [*executables, *(r for r in libs if owner[r] in root_packages or matches(r, keep))]
        reached = set(start)
        queue = deque(start)
        while queue:
            e = elves[queue.popleft()]
            for name in [*e.needed, *([posixpath.basename(e.interp)] if e.interp else [])]:
                lib = by_name.get(name)
                if lib and lib not in reached:
                    reached.add(lib)
                    queue.append(lib)
        unused = libs - reached
        for rel in sorted(unused):
            drop(rel, "unused shared library")
    for rel in links:
        if os.path.lexists(root / rel) and _resolve(root, rel) is None:
            drop(rel, "link to a removed file")
    _prune_dirs(root, {posixpath.dirname(r.path) for r in removed})
    return Report(sorted(removed, key=lambda r: r.path))


def _prune_dirs(root: Path, dirs: set[str]) -> None:
    """Remove the directories that removals left empty, and their parents that became empty."""
    for d in sorted(dirs, key=lambda d: -d.count("/")):
        while d:
            try:
                (root / d).rmdir()
            except OSError:
                break
            d = posixpath.dirname(d)
