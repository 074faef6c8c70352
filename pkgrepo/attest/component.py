"""The record every SBOM is made of: one package, its identity, its content and its sources.

Package URLs: a pkgrepo package is `pkg:generic/pkgrepo/NAME@[EPOCH:]VERSION-rRELEASE?arch=ARCH`;
a source is `pkg:generic/NAME@VERSION?download_url=URL&checksum=sha256:HEX`. A source that
only Debian's archive serves has a `pkg:deb/debian/PACKAGE@VERSION?arch=source` locator
with the file name as subpath instead of a URL.

The content digest names what a package installs, independent of the archive bytes: the
sha256 of its non-directory entries, sorted by path, one line each, `PATH\\0sha256:HEX\\n`
for a file and `PATH\\0->TARGET\\n` for a symlink, leaving out the package's own SBOM files.
It can be recomputed from an installed root, so an image's SBOM and provenance check bind
to the bytes actually installed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packageurl import PackageURL

from pkgrepo.digest import sha256_file
from pkgrepo.errors import BadInput
from pkgrepo.package.extract import SBOM_DIR
from pkgrepo.package.meta import ARCH, FileEntry
from pkgrepo.recipe.model import Source

NAMESPACE = "pkgrepo"


def package_purl(name: str, version: str, arch: str = ARCH) -> str:
    return PackageURL("generic", NAMESPACE, name, version, {"arch": arch}).to_string()


def upstream_project(purl: str) -> str:
    """A purl without version, qualifiers or subpath: the identity of a project, not a release."""
    p = PackageURL.from_string(purl)
    return PackageURL(p.type, p.namespace, p.name).to_string()


def source_uri(src: Source) -> str:
    """Where a source comes from: its upstream URL, or its Debian source package locator."""
    if src.url:
        return src.url
    if src.debian is None:  # a local file (the recipe model requires url, debian or filename)
        return PackageURL(
            "generic", NAMESPACE, src.filename or "source", qualifiers={"checksum": f"sha256:{src.sha256}"}
        ).to_string()
    return PackageURL(
        "deb", "debian", src.debian.package, src.debian.version, {"arch": "source"}, subpath=src.filename
    ).to_string()


@dataclass(frozen=True, order=True)
class SourceRef:
    """An upstream source file: where it comes from and its sha256."""

    uri: str
    sha256: str

    @classmethod
    def from_recipe(cls, src: Source) -> SourceRef:
        return cls(source_uri(src), src.sha256)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1].split("#")[-1]

    def to_dict(self) -> dict[str, str]:
        return {"uri": self.uri, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict) -> SourceRef:
        return cls(str(data["uri"]), str(data["sha256"]))


@dataclass(frozen=True)
class Component:
    """One package as an SBOM lists it."""

    name: str
    version: str  # [epoch:]version-rrelease
    license: str
    origin: str  # the recipe
    content_sha256: str
    sources: tuple[SourceRef, ...] = ()
    homepage: str | None = None
    description: str = ""
    arch: str = ARCH
    upstream: str | None = None  # the upstream project's purl at its version: what advisories match
    cpe: str | None = None  # the upstream's CPE 2.3 name at its version
    fixes: tuple[str, ...] = ()  # vulnerability ids the recipe declares fixed (by patch or release)

    @property
    def purl(self) -> str:
        return package_purl(self.name, self.version, self.arch)

    @property
    def project(self) -> str | None:
        """The upstream project's purl without a version: the key advisories are filed under."""
        return upstream_project(self.upstream) if self.upstream else None

    @property
    def upstream_version(self) -> str | None:
        return PackageURL.from_string(self.upstream).version if self.upstream else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "license": self.license,
            "origin": self.origin,
            "content_sha256": self.content_sha256,
            "sources": [s.to_dict() for s in self.sources],
            "homepage": self.homepage,
            "description": self.description,
            "arch": self.arch,
            "upstream": self.upstream,
            "cpe": self.cpe,
            "fixes": list(self.fixes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Component:
        return cls(
            name=data["name"],
            version=data["version"],
            license=data["license"],
            origin=data["origin"],
            content_sha256=data["content_sha256"],
            sources=tuple(SourceRef.from_dict(s) for s in data.get("sources", [])),
            homepage=data.get("homepage"),
            description=data.get("description", ""),
            arch=data.get("arch", ARCH),
            upstream=data.get("upstream"),
            cpe=data.get("cpe"),
            fixes=tuple(data.get("fixes", ())),
        )


@dataclass(frozen=True)
class Subject:
    """What an SBOM describes: a package or an image (root filesystem)."""

    kind: str  # "package" or "image"
    name: str
    version: str
    created: int  # seconds since the epoch: the build's SOURCE_DATE_EPOCH, never the clock
    components: tuple[Component, ...] = field(default_factory=tuple)


def _digest(lines: Iterable[str]) -> str:
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def content_digest(manifest: Iterable[FileEntry]) -> str:
    """The content digest of a package's manifest (its own SBOM files left out)."""
    return _digest(
        f"{e.path}\0sha256:{e.sha256}\n" if e.type == "file" else f"{e.path}\0->{e.target}\n"
        for e in manifest
        if e.type != "dir" and not e.path.startswith(SBOM_DIR + "/")
    )


def installed_digest(rootfs: Path, files: Iterable[str]) -> str:
    """The content digest of a package as installed in `rootfs` (files as recorded installed)."""
    lines = []
    for rel in files:
        if rel.startswith(SBOM_DIR + "/"):
            continue
        full = rootfs / rel
        try:
            if os.path.islink(full):
                lines.append(f"{rel}\0->{os.readlink(full)}\n")
            else:
                lines.append(f"{rel}\0sha256:{sha256_file(full)}\n")
        except OSError as e:
            raise BadInput(
                f"{rootfs}: /{rel} is recorded installed but cannot be read ({e.strerror})"
            ) from None
    return _digest(lines)
