"""Each SBOM format reads back what it wrote (`read(write(x)) == x`), and its bytes are stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgrepo.attest import cdx, spdx
from pkgrepo.attest.component import Component, SourceRef, Subject
from pkgrepo.attest.sbom import read_sbom
from pkgrepo.errors import BadInput

ZLIB = Component(
    name="zlib",
    version="1.3.1-r2",
    license="Zlib",
    origin="zlib",
    content_sha256="a" * 64,
    sources=(SourceRef("https://zlib.net/zlib-1.3.1.tar.gz", "b" * 64),),
    homepage="https://zlib.net",
    description="compression library",
    upstream="pkg:generic/madler/zlib@1.3.1",
    cpe="cpe:2.3:a:zlib:zlib:1.3.1:*:*:*:*:*:*:*",
    fixes=("CVE-2023-45853", "GHSA-0000-1111-2222"),
)
ZLIB_DEV = Component(
    name="zlib-dev",
    version="1:1.3.1-r2",
    license="",
    origin="zlib",
    content_sha256="c" * 64,
    sources=ZLIB.sources,
)
BUSYBOX = Component(
    name="busybox",
    version="1.36.1-r0",
    license="GPL-2.0-only",
    origin="busybox",
    content_sha256="d" * 64,
    sources=(SourceRef("pkg:deb/debian/busybox@1:1.36.1-1?arch=source", "e" * 64),),
)
SUBJECTS = [
    Subject("image", "hello", "1.0", 1_700_000_000, (ZLIB, ZLIB_DEV, BUSYBOX)),
    Subject("image", "empty", "", 0, ()),
    Subject("package", "zlib", "", 1_700_000_000, (ZLIB,)),
]
FORMATS = {"spdx": spdx.spdx_document, "cdx": cdx.cyclonedx_document}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{s.kind}-{s.name}")
def test_read_gives_back_what_write_wrote(fmt: str, subject: Subject, tmp_path: Path):
    data = FORMATS[fmt](subject)
    path = tmp_path / f"doc.{fmt}.json"
    path.write_bytes(data)
    back = read_sbom(path)
    key = lambda c: c.name  # noqa: E731 - the documents sort components by name
    assert back == Subject(
        subject.kind,
        subject.name,
        subject.version,
        subject.created,
        tuple(sorted(subject.components, key=key)),
    )
    assert FORMATS[fmt](back) == data  # and writing what was read gives the same bytes


def test_the_markers_are_the_modules_constants():
    """The prose a format carries pkgrepo's facts in is written from, and parsed by, its constants."""
    doc = json.loads(spdx.spdx_document(SUBJECTS[0]))
    zlib = next(p for p in doc["packages"] if p["name"] == "zlib")
    assert zlib["sourceInfo"] == spdx.BUILT_FROM + "zlib"
    comments = {r.get("comment") for r in zlib["externalRefs"]}
    assert {spdx.UPSTREAM, spdx.FIXED} <= comments
    sources = [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "SOURCE"]
    assert all(p["sourceInfo"].startswith(spdx.UPSTREAM_SOURCE) for p in sources) and sources
    bom = json.loads(cdx.cyclonedx_document(SUBJECTS[0]))
    props = {p["name"]: p["value"] for c in bom["components"] if c["name"] == "zlib" for p in c["properties"]}
    assert props == {cdx.ORIGIN: "zlib"}
    assert {v["analysis"]["detail"] for v in bom["vulnerabilities"]} == {cdx.FIX_DETAIL}


def test_neither_format_is_refused(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(BadInput, match="neither SPDX"):
        read_sbom(path)
