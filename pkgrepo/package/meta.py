"""Package metadata (`.PKGINFO`) and the per-file manifest (`.MANIFEST`).

Typed records with symmetric serialisation (`from_dict`/`to_dict`), in
python-tuf's style: plain dataclasses, checked field by field on the way in,
so the client path (which runs inside dev images on our own Python) needs no
pydantic. A record that does not check raises `MetadataError` naming the
field; readers turn it into their bad-input error with the file's name.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from pkgrepo.safeio import untrusted_json

FORMAT = 1
ARCH = "x86_64"
PACKAGE_SUFFIX = ".pkg.tar.zst"  # the end of every package file's name (`PackageInfo.filename`)
# What a packaged or installed path is; archive members may be more (`archive.MemberKind`).
FileKind = Literal["file", "dir", "symlink"]
FILE_TYPES: tuple[FileKind, ...] = get_args(FileKind)
# What package names, versions and architectures may be: they become file and target names.
NAME_RE = r"^[a-z0-9][a-z0-9+._-]*$"
VERSION_RE = r"^[0-9][A-Za-z0-9.+~_]*$"
ARCH_RE = r"^[a-z0-9_]+$"


class MetadataError(ValueError):
    """A metadata record that does not have the documented shape."""


def _check(cls: type, data: object) -> dict[str, Any]:
    """`data` as keyword arguments for dataclass `cls`: known fields only, each of its declared type."""
    if not isinstance(data, dict):
        raise MetadataError(f"expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MetadataError(f"{unknown[0]}: unknown field")
    out: dict[str, Any] = {}
    for name, value in data.items():
        kinds = cls.TYPES[name]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if ok and isinstance(value, list | tuple):
            ok = all(isinstance(v, str) for v in value)
            value = list(value)
        if not ok:
            raise MetadataError(f"{name}: {value!r} is not a valid {cls.TYPES_SHOWN[name]}")
        out[name] = value
    missing = [
        n
        for n, f in fields.items()
        if n not in out and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise MetadataError(f"{missing[0]}: field required")
    return out


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    origin: str  # the recipe that built this package
    format: int = FORMAT
    epoch: int = 0
    release: int = 1
    arch: str = ARCH
    description: str = ""
    license: str = ""
    homepage: str | None = None
    depends: list[str] = dataclasses.field(default_factory=list)
    provides: list[str] = dataclasses.field(default_factory=list)
    installed_size: int = 0
    build_date: int = 0  # SOURCE_DATE_EPOCH of the build
    upstream: str | None = None  # the upstream project's purl with its version (advisories match it)
    cpe: str | None = None  # the upstream's CPE 2.3 name with its version
    fixes: list[str] = dataclasses.field(default_factory=list)  # vulnerability ids the recipe fixes

    # Written only when set, so a package without them reads as before in older readers.
    OPTIONAL: ClassVar[tuple[str, ...]] = ("upstream", "cpe", "fixes")

    TYPES: ClassVar[dict[str, tuple[type, ...]]] = {
        "name": (str,),
        "version": (str,),
        "origin": (str,),
        "format": (int,),
        "epoch": (int,),
        "release": (int,),
        "arch": (str,),
        "description": (str,),
        "license": (str,),
        "homepage": (str, type(None)),
        "depends": (list, tuple),
        "provides": (list, tuple),
        "installed_size": (int,),
        "build_date": (int,),
        "upstream": (str, type(None)),
        "cpe": (str, type(None)),
        "fixes": (list, tuple),
    }
    TYPES_SHOWN: ClassVar[dict[str, str]] = {
        k: "list of strings"
        if k in ("depends", "provides", "fixes")
        else "string or null"
        if k in ("homepage", "upstream", "cpe")
        else "integer"
        if v == (int,)
        else "string"
        for k, v in TYPES.items()
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "depends", list(self.depends))
        object.__setattr__(self, "provides", list(self.provides))
        object.__setattr__(self, "fixes", list(self.fixes))

    @classmethod
    def from_dict(cls, data: object) -> PackageInfo:
        if isinstance(data, dict) and "build_key" in data:
            # Packages (and index entries) made before the build key left the package carry it:
            # it is the signed provenance's `invocationId` now, so a rebuild from other inputs
            # with the same output gives the same bytes. Read and dropped.
            data = {k: v for k, v in data.items() if k != "build_key"}
        info = cls(**_check(cls, data))
        for field_name, pattern in (("name", NAME_RE), ("version", VERSION_RE), ("arch", ARCH_RE)):
            if not re.match(pattern, getattr(info, field_name)):
                raise MetadataError(f"{field_name}: {getattr(info, field_name)!r} does not match {pattern}")
        if info.release < 0 or info.epoch < 0:
            raise MetadataError("release and epoch are counts; a negative one is not")
        return info

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["depends"], data["provides"] = list(self.depends), list(self.provides)
        data["fixes"] = list(self.fixes)
        for key in self.OPTIONAL:
            if not data[key]:
                del data[key]
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> PackageInfo:
        try:
            value = untrusted_json(data)
        except ValueError as e:
            raise MetadataError(f"not JSON ({e})") from None
        return cls.from_dict(value)

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def replace(self, **changes: Any) -> PackageInfo:
        return dataclasses.replace(self, **changes)

    @property
    def full_version(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{epoch}{self.version}-r{self.release}"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-r{self.release}.{self.arch}{PACKAGE_SUFFIX}"


@dataclass(frozen=True)
class FileEntry:
    path: str
    type: FileKind
    mode: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None

    TYPES: ClassVar[dict[str, tuple[type, ...]]] = {
        "path": (str,),
        "type": (str,),
        "mode": (int,),
        "size": (int,),
        "sha256": (str, type(None)),
        "target": (str, type(None)),
    }
    TYPES_SHOWN: ClassVar[dict[str, str]] = {
        "path": "string",
        "type": "string",
        "mode": "integer",
        "size": "integer",
        "sha256": "string or null",
        "target": "string or null",
    }

    @classmethod
    def from_dict(cls, data: object) -> FileEntry:
        entry = cls(**_check(cls, data))
        if entry.type not in FILE_TYPES:
            raise MetadataError(f"type: {entry.type!r} is not one of {', '.join(FILE_TYPES)}")
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def manifest_from_bytes(data: bytes) -> list[FileEntry]:
    try:
        items = untrusted_json(data)
    except ValueError as e:
        raise MetadataError(f"not JSON ({e})") from None
    if not isinstance(items, list):
        raise MetadataError("expected a list of file entries")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(FileEntry.from_dict(item))
        except MetadataError as e:
            raise MetadataError(f"{i}.{e}") from None
    return out


def manifest_to_bytes(manifest: list[FileEntry]) -> bytes:
    return canonical_json([e.to_dict() for e in manifest])


def canonical_json(data: object) -> bytes:
    """Sorted keys, no spaces, UTF-8, final newline: the same data gives the same bytes."""
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
