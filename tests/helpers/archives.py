"""Package archives made by hand: a small valid package, and hostile ones written member by member.

`HOSTILE_CASES` maps a case name to (members, the words its refusal names).
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import libarchive
import libarchive.ffi
import libarchive.write
import zstandard
from libarchive.entry import FileType

from pkgrepo.package.archive import scan_tree, write_package
from pkgrepo.package.meta import PackageInfo, canonical_json

INFO = PackageInfo(
    name="demo", version="1.0", description="demo", license="MIT", origin="demo", build_date=1_700_000_000
)


def make_package(
    out: Path,
    name: str,
    version: str = "1.0",
    release: int = 1,
    depends: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
    origin: str | None = None,
) -> Path:
    """A small real package: one text file per entry of `files` (`origin`: its recipe, by
    default its name)."""
    stage = out / f".stage-{name}-{version}-{release}"
    files = files or {f"usr/share/{name}/VERSION": f"{name} {version}-r{release}\n"}
    for rel, text in files.items():
        p = stage / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    manifest = scan_tree(stage, sorted(files))
    info = PackageInfo(
        name=name,
        version=version,
        release=release,
        origin=origin or name,
        description=f"the {name} package",
        license="MIT",
        depends=list(depends),
        installed_size=sum(e.size for e in manifest),
        build_date=1_700_000_000,
    )
    return write_package(stage, manifest, info, out / info.filename)


def hostile(path: Path, members: list[dict], manifest: list[dict] | None = None) -> Path:
    """A package whose members are written as given, with a manifest that lists them."""
    if manifest is None:
        manifest = []
        for m in members:
            kind = m.get("type", "file")
            kind = "file" if kind in ("hardlink", "device") else kind  # what a forger would list
            default = {"dir": 0o755, "symlink": 0o777}.get(kind, 0o644)
            e = {"path": m["path"], "type": kind, "mode": m.get("mode", default)}
            if e["type"] == "file":
                data = m.get("data", b"")
                e.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
            if "target" in m:
                e["target"] = m["target"]
            manifest.append(e)
    size = sum(e.get("size", 0) for e in manifest if e["type"] == "file")  # consistent, as a forger makes it
    info = INFO.replace(name="evil", installed_size=size).to_bytes()
    with package_writer(path, info, canonical_json(manifest)) as tar:
        for m in members:
            kind = m.get("type", "file")
            data = m.get("data", b"")
            attrs = {"uid": 0, "gid": 0, "mtime": 1}
            if kind == "dir":
                tar.add_file_from_memory(
                    m["path"], 0, b"", filetype=FileType.DIRECTORY, permission=m.get("mode", 0o755)
                )
            elif kind == "symlink":
                from pkgrepo.package.archive import _add_symlink

                _add_symlink(tar, m["path"], m["target"], attrs)
            elif kind == "hardlink":
                entry = libarchive.ArchiveEntry(
                    pathname=m["path"], size=0, filetype=FileType.REGULAR_FILE, perm=0o644, **attrs
                )
                _copy_hardlink(entry._entry_p, m["target"].encode())
                libarchive.ffi.write_header(tar._pointer, entry._entry_p)
                libarchive.ffi.write_finish_entry(tar._pointer)
            elif kind == "device":
                tar.add_file_from_memory(
                    m["path"],
                    0,
                    b"",
                    filetype=FileType.CHAR_DEVICE,
                    permission=0o666,
                    rdevmajor=1,
                    rdevminor=3,
                    **attrs,
                )
            else:
                tar.add_file_from_memory(m["path"], len(data), data, permission=m.get("mode", 0o644), **attrs)
    return path


@contextmanager
def package_writer(path: Path, info: bytes, manifest: bytes) -> Iterator[libarchive.write.ArchiveWrite]:
    """A tar+zstd package at `path` whose .PKGINFO and .MANIFEST are these bytes, whatever they hold;
    the caller adds any further members, written exactly as given."""
    raw = bytearray()

    def sink(data: bytes) -> int:
        raw.extend(data)
        return len(data)

    with libarchive.custom_writer(sink, "pax_restricted") as tar:
        tar.add_file_from_memory(".PKGINFO", len(info), info)
        tar.add_file_from_memory(".MANIFEST", len(manifest), manifest)
        yield tar
    path.write_bytes(zstandard.ZstdCompressor().compress(bytes(raw)))


_copy_hardlink = libarchive.ffi.ffi(
    "entry_copy_hardlink", [libarchive.ffi.c_archive_entry_p, ctypes.c_char_p], None
)

HOSTILE_CASES = {
    "dotdot": ([{"path": "usr/../../etc/passwd", "data": b"x"}], "contains '..'"),
    "absolute": ([{"path": "/etc/passwd", "data": b"x"}], "absolute path"),
    "symlink-escape": (
        [
            {"path": "usr", "type": "dir"},
            {"path": "usr/evil", "type": "symlink", "target": "../../../etc/shadow"},
        ],
        "points outside the root",
    ),
    "write-through-symlink": (
        [
            {"path": "etc", "type": "symlink", "target": "/tmp"},
            {"path": "etc/passwd", "data": b"root::0:0::/:/bin/sh\n"},
        ],
        "written through symlink 'etc'",
    ),
    "hardlink-outside": ([{"path": "shadow", "type": "hardlink", "target": "/etc/shadow"}], "is a hardlink"),
    "device": ([{"path": "dev/mem", "type": "device"}], "is a device"),
    "setuid": ([{"path": "bin/su", "data": b"\x7fELF", "mode": 0o4755}], "setuid"),
}
