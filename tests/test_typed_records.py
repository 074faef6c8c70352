"""Every typed record with `from_dict`/`to_dict` reads back what it writes, through real JSON.

A field added to one side only (written but not read, or read under another key) fails here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pkgrepo.attest.component import Component, SourceRef
from pkgrepo.attest.provenance import Resource
from pkgrepo.builder.records import BuildRecord
from pkgrepo.image.sigkeys import KeyRecord
from pkgrepo.package.meta import FileEntry, MetadataError, PackageInfo
from pkgrepo.package.rootfs import InstalledPackage
from pkgrepo.repo.index import IndexEntry
from pkgrepo.web.catalogue import Patch, Provenanced, _provenanced

INFO = PackageInfo(
    name="zlib-dev",
    version="1.3.1",
    epoch=1,
    release=2,
    description="zlib headers",
    license="Zlib",
    homepage="https://zlib.net",
    origin="zlib",
    depends=["so:libz.so.1", "zlib=1:1.3.1-r2"],
    provides=["pc:zlib=1.3.1"],
    installed_size=4096,
    build_date=1_700_000_000,
    upstream="pkg:generic/madler/zlib@1.3.1",
    cpe="cpe:2.3:a:zlib:zlib:1.3.1:*:*:*:*:*:*:*",
    fixes=["CVE-2023-45853"],
)
SOURCE = SourceRef("https://zlib.net/zlib-1.3.1.tar.gz", "b" * 64)

# (record, how it is read back from its dict)
CASES: list[tuple[Any, Any]] = [
    (INFO, PackageInfo.from_dict),
    (PackageInfo(name="hello", version="2.12", origin="hello"), PackageInfo.from_dict),
    (FileEntry("usr/lib/libz.so.1.3.1", "file", 0o755, 100, "c" * 64), FileEntry.from_dict),
    (FileEntry("usr/lib/libz.so.1", "symlink", 0o777, target="libz.so.1.3.1"), FileEntry.from_dict),
    (FileEntry("usr/include", "dir", 0o755), FileEntry.from_dict),
    (IndexEntry(INFO, f"packages/{INFO.filename}", "d" * 64, 1234), IndexEntry.from_dict),
    (
        InstalledPackage(
            "zlib", "1.3.1-r2", True, "native:packages", "zlib", ("musl",), ("so:libz.so.1",), 9, ("a", "b")
        ),
        lambda d: InstalledPackage.from_dict("zlib", d),
    ),
    (SOURCE, SourceRef.from_dict),
    (
        Component(
            "zlib",
            "1.3.1-r2",
            "Zlib",
            "zlib",
            "a" * 64,
            (SOURCE,),
            "https://zlib.net",
            "z",
            "x86_64",
            "pkg:generic/madler/zlib@1.3.1",
            None,
            ("CVE-2023-45853",),
        ),
        Component.from_dict,
    ),
    (
        Resource("build-dependency", "pkg:generic/pkgrepo/musl@1.2.5-r0", "e" * 64, {"k": "v"}),
        Resource.from_dict,
    ),
    (Resource("recipe"), Resource.from_dict),
    (
        KeyRecord("f" * 64, "-----BEGIN PUBLIC KEY-----\n", 1_700_000_000, 1_800_000_000, 1_750_000_000),
        lambda d: KeyRecord.from_dict("keys.json", d),
    ),
    (KeyRecord("f" * 64, "pem", 0, 86_400), lambda d: KeyRecord.from_dict("keys.json", d)),
    (BuildRecord("k" * 64, ["a.pkg"], tested=True), BuildRecord.from_dict),
    (
        Provenanced(
            "verified: signed by key abc",
            True,
            "https://builder v1",
            "recipes/zlib.yaml",
            (("https://zlib.net/zlib-1.3.1.tar.gz", "b" * 64),),
            (Patch("fix.patch", "c" * 64, ("CVE-2023-45853",)), Patch("doc.patch", None, ())),
        ),
        _provenanced,
    ),
]


@pytest.mark.parametrize(("record", "read"), CASES, ids=lambda x: type(x).__name__)
def test_round_trip(record: Any, read: Any):
    data = json.loads(json.dumps(record.to_dict()))
    assert read(data) == record
    assert read(data).to_dict() == record.to_dict()


def test_a_package_as_advisories_see_it():
    """`affected` and the web catalogue match advisories against the same record of a package."""
    from pkgrepo.attest.advisories import package_component
    from pkgrepo.web.matching import component

    c = package_component(INFO)
    assert (c.name, c.version, c.license, c.origin, c.content_sha256) == (
        "zlib-dev",
        "1:1.3.1-r2",
        "Zlib",
        "zlib",
        "",
    )
    assert (c.upstream, c.cpe, c.fixes) == (INFO.upstream, INFO.cpe, tuple(INFO.fixes))
    assert (c.project, c.upstream_version) == ("pkg:generic/madler/zlib", "1.3.1")
    web = component(INFO)
    assert type(web) is not Component and dataclasses.asdict(web) == dataclasses.asdict(c)
    assert web.project == c.project


def test_a_package_made_with_its_build_key_still_reads():
    """Packages and index entries made before the build key moved into the provenance carry a
    `build_key` field: read and dropped, not refused; the package no longer writes it."""
    old = {**INFO.to_dict(), "build_key": "k" * 64}
    assert PackageInfo.from_dict(old) == INFO
    assert "build_key" not in INFO.to_dict()
    with pytest.raises(MetadataError, match="build_date"):
        PackageInfo.from_dict({**old, "build_date": "yesterday"})
