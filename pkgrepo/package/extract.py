"""Check a package's members before anything is written (archives are hostile).

A package is hostile even when validly signed: its builder may be compromised.
Refused, naming the member: names that are not UTF-8, absolute, contain `..`,
`.` or empty components, or are longer than PATH_MAX / NAME_MAX; anything at
or under the database directory (`var/lib/pkgrepo`) or a non-directory on the
way to it; names starting with `.pkgrepo-` (the installer's temporary names);
duplicate entries; entries outside the manifest or differing from it; hard
links, device nodes, fifos, sockets; setuid/setgid bits and modes that are not
normalised (files 0644 or 0755, directories 0755, symlinks 0777); symbolic
links whose target leaves the root; members written through a symlink of the
same package; data beyond a member's manifest size or beyond the package's
declared `installed_size`, found while streaming, so a decompression bomb
stops after at most its declared size.

File data is spooled (in memory up to `SPOOL_MEMORY` per package, then in an
anonymous temporary file), never held whole. Writing is done by the rootfs
destination (`pkgrepo.package.rootfs`).
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.package.archive import payload
from pkgrepo.package.meta import FileEntry, FileKind, PackageInfo

PATH_MAX = 4096  # bytes of an absolute path, with its terminating NUL
NAME_MAX = 255  # bytes of one path component
DB_DIR = "var/lib/pkgrepo"  # where the rootfs destination keeps its database; no package may ship into it...
SBOM_DIR = f"{DB_DIR}/sbom"  # ...but for its own SBOMs here, where scanners read what is installed


def own_sboms(name: str) -> tuple[str, str]:
    """The SPDX and CycloneDX files package `name` may carry about itself."""
    return f"{SBOM_DIR}/{name}.spdx.json", f"{SBOM_DIR}/{name}.cdx.json"


RESERVED_PREFIX = ".pkgrepo-"  # the destination's temporary names
NORMAL_MODES = {"file": (0o644, 0o755), "dir": (0o755,), "symlink": (0o777,)}
SPOOL_MEMORY = 8 << 20  # file bytes per package kept in memory before spilling to a temporary file
COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class CheckedMember:
    path: str
    kind: FileKind
    mode: int
    size: int
    linkpath: str | None
    offset: int  # of a file's data in the package's spool


@dataclass(frozen=True)
class CheckedPackage:
    path: Path
    info: PackageInfo
    manifest: list[FileEntry]
    members: list[CheckedMember]
    spool: tempfile.SpooledTemporaryFile

    def chunks(self, member: CheckedMember) -> Iterator[bytes]:
        """A checked file's data, in blocks."""
        left, pos = member.size, member.offset
        while left:
            self.spool.seek(pos)
            block = self.spool.read(min(left, COPY_BLOCK))
            left -= len(block)
            pos += len(block)
            yield block


def check_path(where: Path, name: str, allowed: frozenset[str] = frozenset()) -> str:
    if not name or "\0" in name:
        raise BadInput(f"{where}: empty or NUL-containing member name; refusing the package")
    if name.startswith("/"):
        raise BadInput(f"{where}: member {name!r} has an absolute path; refusing the package")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadInput(f"{where}: member {name!r} contains '..', '.' or an empty component; refusing")
    rel = "/".join(parts)
    if len(rel.encode()) + 2 > PATH_MAX:
        raise BadInput(
            f"{where}: member {name[:60]!r}... is longer than PATH_MAX ({PATH_MAX} bytes); refusing"
        )
    long = next((p for p in parts if len(p.encode()) > NAME_MAX), None)
    if long:
        raise BadInput(
            f"{where}: member {name[:60]!r}... has a component longer than NAME_MAX "
            f"({NAME_MAX} bytes); refusing"
        )
    if (rel == DB_DIR or rel.startswith(DB_DIR + "/")) and rel not in allowed:
        raise BadInput(
            f"{where}: member {rel!r} is in /{DB_DIR}, where pkgrepo keeps its database; refusing the package"
        )
    if parts[-1].startswith(RESERVED_PREFIX):
        raise BadInput(
            f"{where}: member {rel!r}: names starting with {RESERVED_PREFIX!r} are pkgrepo's "
            "temporary names; refusing the package"
        )
    return rel


def check_symlink(where: Path, name: str, target: str) -> None:
    if not target or "\0" in target:
        raise BadInput(f"{where}: symlink {name!r} has an empty target; refusing the package")
    if len(target.encode()) >= PATH_MAX:
        raise BadInput(f"{where}: symlink {name!r} has a target longer than PATH_MAX; refusing the package")
    if target.startswith("/"):
        return  # resolved against the image's own root, never followed while installing
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise BadInput(f"{where}: symlink {name!r} -> {target!r} points outside the root; refusing")


def _check_head(path: Path, info: PackageInfo, manifest: list[FileEntry]) -> dict[str, FileEntry]:
    expected = {e.path: e for e in manifest}
    if len(expected) != len(manifest):
        twice = next(p for i, p in enumerate(e.path for e in manifest) if p in {e.path for e in manifest[:i]})
        raise BadInput(f"{path}: manifest lists {twice!r} twice; refusing the package")
    bad = next((e for e in manifest if e.size < 0), None)
    if bad:
        raise BadInput(f"{path}: manifest gives {bad.path!r} a negative size; the package is tampered")
    total = sum(e.size for e in manifest if e.type == "file")
    if info.installed_size != total:
        raise BadInput(
            f"{path}: installed_size {info.installed_size} differs from the manifest's total "
            f"{total}; the package is tampered"
        )
    return expected


def check_package(path: Path) -> CheckedPackage:
    """Read and verify a whole package; raise BadInput naming the first problem."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - owned by the result
    try:
        return _check(path, spool)
    except BaseException:
        spool.close()
        raise


def _check(path: Path, spool: tempfile.SpooledTemporaryFile) -> CheckedPackage:
    with payload(path) as (info, manifest, entries):
        expected = _check_head(path, info, manifest)
        seen: dict[str, CheckedMember] = {}
        links: set[str] = set()
        sboms = own_sboms(info.name)
        allowed = frozenset({DB_DIR, SBOM_DIR, *sboms})
        for m in entries:
            name = check_path(path, m.path, allowed)
            if name in allowed and m.kind != ("file" if name in sboms else "dir"):
                raise BadInput(
                    f"{path}: member {name!r} is a {m.kind} in /{DB_DIR}, where pkgrepo keeps its "
                    "database; refusing the package"
                )
            if name in seen:
                raise BadInput(f"{path}: member {name!r} appears twice; refusing the package")
            parts = name.split("/")
            through = next(
                ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links), None
            )
            if through:
                raise BadInput(
                    f"{path}: member {name!r} would be written through symlink {through!r}; refusing"
                )
            if m.kind not in NORMAL_MODES:
                raise BadInput(
                    f"{path}: member {name!r} is a {m.kind}; packages may hold only files, dirs, symlinks"
                )
            if m.mode & 0o6000:
                raise BadInput(f"{path}: member {name!r} has a setuid/setgid bit; refusing the package")
            if DB_DIR.startswith(name + "/") and m.kind != "dir":
                raise BadInput(
                    f"{path}: member {name!r} is a {m.kind} on the way to /{DB_DIR}, where pkgrepo "
                    "keeps its database; refusing the package"
                )
            entry = expected.get(name)
            if entry is None:
                raise BadInput(
                    f"{path}: member {name!r} is not in the package manifest; the package is tampered"
                )
            if entry.type != m.kind or entry.mode != m.mode:
                raise BadInput(
                    f"{path}: member {name!r} differs from its manifest entry; the package is tampered"
                )
            if m.mode not in NORMAL_MODES[m.kind]:
                allowed = " or ".join(f"{x:04o}" for x in NORMAL_MODES[m.kind])
                raise BadInput(
                    f"{path}: member {name!r} has mode {m.mode:04o}; a {m.kind} must be {allowed} "
                    "(modes are normalised, see docs/packages.md); refusing the package"
                )
            offset = spool.tell()
            if m.kind == "file":
                if m.size != entry.size:
                    raise BadInput(
                        f"{path}: member {name!r} is {m.size} bytes, its manifest entry says "
                        f"{entry.size}; the package is tampered"
                    )
                h = hashlib.sha256()
                for block in m.chunks(entry.size):
                    h.update(block)
                    spool.write(block)
                if h.hexdigest() != entry.sha256 or spool.tell() - offset != entry.size:
                    raise BadInput(
                        f"{path}: {name!r} does not match its sha256 in the manifest; the package is tampered"
                    )
            if m.kind == "symlink":
                if m.linkpath != entry.target:
                    raise BadInput(f"{path}: symlink {name!r} differs from its manifest entry; tampered")
                check_symlink(path, name, m.linkpath or "")
                links.add(name)
            seen[name] = CheckedMember(
                name, m.kind, m.mode, entry.size if m.kind == "file" else 0, m.linkpath, offset
            )
    for name in seen:  # a member archived before the symlink it would be written through
        parts = name.split("/")
        through = next(
            ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links), None
        )
        if through:
            raise BadInput(f"{path}: member {name!r} would be written through symlink {through!r}; refusing")
    if len(seen) != len(manifest):
        raise BadInput(
            f"{path}: payload does not match the manifest (missing entries); the package is tampered"
        )
    return CheckedPackage(path, info, manifest, list(seen.values()), spool)
