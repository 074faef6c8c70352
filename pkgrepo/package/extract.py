"""Check a package's members before anything is written (archives are hostile).

Refused: absolute paths, `..`, entries outside the manifest or differing from
it, hard links, device nodes, fifos, sockets, setuid/setgid bits, and symbolic
links whose target leaves the root. Writing is done elsewhere
(`pkgrepo.install`), through directory descriptors opened without following
links, so a link planted in the root cannot redirect a write either.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.package.archive import Member, payload
from pkgrepo.package.meta import FileEntry, PackageInfo


@dataclass(frozen=True)
class CheckedPackage:
    path: Path
    info: PackageInfo
    manifest: list[FileEntry]
    members: list[Member]


def check_path(where: Path, name: str) -> str:
    if not name or "\0" in name:
        raise BadInput(f"{where}: empty or NUL-containing member name; refusing the package")
    if name.startswith("/"):
        raise BadInput(f"{where}: member {name!r} has an absolute path; refusing the package")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadInput(f"{where}: member {name!r} contains '..', '.' or an empty component; refusing")
    return "/".join(parts)


def check_symlink(where: Path, name: str, target: str) -> None:
    if not target or "\0" in target:
        raise BadInput(f"{where}: symlink {name!r} has an empty target; refusing the package")
    if target.startswith("/"):
        return  # resolved against the image's own root, never followed while installing
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise BadInput(f"{where}: symlink {name!r} -> {target!r} points outside the root; refusing")


def check_package(path: Path) -> CheckedPackage:
    """Read and verify a whole package; raise BadInput naming the first problem."""
    info, manifest, members = payload(path)
    expected = {e.path: e for e in manifest}
    if len(expected) != len(manifest):
        raise BadInput(f"{path}: manifest lists a path twice; refusing the package")
    seen: list[Member] = []
    links: set[str] = set()
    for m in members:
        name = check_path(path, m.path)
        parts = name.split("/")
        through = next(
            ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links), None
        )
        if through:
            raise BadInput(f"{path}: member {name!r} would be written through symlink {through!r}; refusing")
        if m.kind not in ("file", "dir", "symlink"):
            raise BadInput(
                f"{path}: member {name!r} is a {m.kind}; packages may hold only files, dirs, symlinks"
            )
        if m.mode & 0o6000:
            raise BadInput(f"{path}: member {name!r} has a setuid/setgid bit; refusing the package")
        entry = expected.get(name)
        if entry is None:
            raise BadInput(f"{path}: member {name!r} is not in the package manifest; the package is tampered")
        if entry.type != m.kind or entry.mode != m.mode:
            raise BadInput(
                f"{path}: member {name!r} differs from its manifest entry; the package is tampered"
            )
        if m.kind == "file" and hashlib.sha256(m.data).hexdigest() != entry.sha256:
            raise BadInput(
                f"{path}: {name!r} does not match its sha256 in the manifest; the package is tampered"
            )
        if m.kind == "symlink":
            if m.linkpath != entry.target:
                raise BadInput(f"{path}: symlink {name!r} differs from its manifest entry; tampered")
            check_symlink(path, name, m.linkpath or "")
            links.add(name)
        seen.append(Member(name, m.kind, m.mode, m.size, m.linkpath, m.data))
    if len(seen) != len(manifest) or {m.path for m in seen} != set(expected):
        raise BadInput(
            f"{path}: payload does not match the manifest (missing entries); the package is tampered"
        )
    return CheckedPackage(path, info, manifest, seen)
