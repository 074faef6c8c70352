"""SBOMs as SPDX 2.3 JSON (spdx-tools): written from `Subject` records and read back into them.

Validated by spdx-tools' own validator before a byte is written and after every read. What SPDX
has no field for is said in prose fields with fixed markers (the constants below), written and
parsed by this module only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from license_expression import ExpressionError
from packageurl import PackageURL
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Checksum,
    ChecksumAlgorithm,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from pkgrepo.attest.component import NAMESPACE, Component, SourceRef, Subject
from pkgrepo.attest.sbomshared import TOOL, fix_id, fix_url, stable_json, subject_digest, subject_sources
from pkgrepo.errors import BadInput, PkgrepoError

BUILT_FROM = "built by pkgrepo from recipe "  # a package's sourceInfo: this, then the recipe's name
UPSTREAM_SOURCE = "upstream source "  # a source package's sourceInfo: this, then its URI
UPSTREAM = "upstream project"  # the comment that marks the upstream purl among a package's refs
FIXED = "fixed in this package"  # the comment of an advisory ref the recipe declares fixed


def _spdx_id(kind: str, text: str) -> str:
    return f"SPDXRef-{kind}-" + "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in text)


def _license(text: str):
    try:
        return spdx_licensing.parse(text, validate=True) if text else SpdxNoAssertion()
    except ExpressionError:
        return SpdxNoAssertion()


def spdx_document(subject: Subject) -> bytes:
    created = datetime.fromtimestamp(subject.created, UTC)
    digest = subject_digest(subject)
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{subject.kind} {subject.name} {subject.version}".strip(),
        document_namespace=f"https://spdx.org/spdxdocs/pkgrepo/{subject.kind}/{subject.name}-{digest}",
        creators=[Actor(ActorType.TOOL, TOOL)],
        created=created,
    )
    packages: list[Package] = []
    relationships: list[Relationship] = []
    if subject.kind == "image":
        top = _spdx_id("Image", subject.name)
        packages.append(
            Package(
                top,
                subject.name,
                SpdxNoAssertion(),
                version=subject.version,
                files_analyzed=False,
                primary_package_purpose=PackagePurpose.CONTAINER,
                license_concluded=SpdxNoAssertion(),
                license_declared=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
            )
        )
        relationships.append(Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, top))
    for c in sorted(subject.components, key=lambda c: c.name):
        pid = _spdx_id("Package", c.name)
        packages.append(
            Package(
                pid,
                c.name,
                SpdxNoAssertion(),
                version=c.version,
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, c.content_sha256)],
                homepage=c.homepage,
                summary=c.description or None,
                source_info=f"{BUILT_FROM}{c.origin}",
                license_concluded=_license(c.license),
                license_declared=_license(c.license),
                copyright_text=SpdxNoAssertion(),
                primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
                external_references=_spdx_refs(c),
            )
        )
        if subject.kind == "image":
            relationships.append(Relationship(top, RelationshipType.CONTAINS, pid))
        else:
            relationships.append(Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, pid))
        for s in sorted(c.sources):
            relationships.append(
                Relationship(pid, RelationshipType.GENERATED_FROM, _spdx_id("Source", s.sha256))
            )
    for s in subject_sources(subject):
        download = s.uri if s.uri.startswith(("http://", "https://", "ftp://")) else SpdxNoAssertion()
        packages.append(
            Package(
                _spdx_id("Source", s.sha256),
                s.name,
                download,
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, s.sha256)],
                primary_package_purpose=PackagePurpose.SOURCE,
                license_concluded=SpdxNoAssertion(),
                license_declared=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
                source_info=f"{UPSTREAM_SOURCE}{s.uri}",
                external_references=[
                    ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", _source_purl(s))
                ],
            )
        )
    doc = Document(info, packages=packages, relationships=relationships)
    problems = validate_full_spdx_document(doc)
    if problems:
        raise PkgrepoError(f"SPDX document for {subject.name} is not valid: {problems[0].validation_message}")
    return stable_json(DocumentConverter().convert(doc))


def _spdx_refs(c: Component) -> list[ExternalPackageRef]:
    pm, sec = ExternalPackageRefCategory.PACKAGE_MANAGER, ExternalPackageRefCategory.SECURITY
    refs = [ExternalPackageRef(pm, "purl", c.purl)]
    if c.upstream:
        refs.append(ExternalPackageRef(pm, "purl", c.upstream, UPSTREAM))
    if c.cpe:
        refs.append(ExternalPackageRef(sec, "cpe23Type", c.cpe))
    refs += [ExternalPackageRef(sec, "advisory", fix_url(i), FIXED) for i in c.fixes]
    return refs


def _spdx_identity(refs) -> tuple[PackageURL | None, str | None, str | None, tuple[str, ...]]:
    """(our purl, upstream purl, CPE, fixed ids) from a package's external references."""
    ours = upstream = cpe = None
    fixes = []
    for r in refs:
        if r.reference_type == "purl" and r.comment == UPSTREAM:
            upstream = r.locator
        elif r.reference_type == "purl" and ours is None:
            ours = PackageURL.from_string(r.locator)
        elif r.reference_type == "cpe23Type":
            cpe = r.locator
        elif r.reference_type == "advisory" and r.comment == FIXED:
            fixes.append(fix_id(r.locator))
    return ours, upstream, cpe, tuple(sorted(fixes))


def _source_purl(s: SourceRef) -> str:
    if s.uri.startswith("pkg:"):
        return s.uri
    return PackageURL(
        "generic", None, s.name, None, {"download_url": s.uri, "checksum": f"sha256:{s.sha256}"}
    ).to_string()


def read_spdx(path: Path, data: dict) -> Subject:
    try:
        doc = JsonLikeDictParser().parse(data)
    except SPDXParsingError as e:
        raise BadInput(f"{path}: not a valid SPDX document: {e.get_messages()[0]}") from None
    problems = validate_full_spdx_document(doc)
    if problems:
        raise BadInput(f"{path}: not a valid SPDX document: {problems[0].validation_message}")
    by_id = {p.spdx_id: p for p in doc.packages}
    generated: dict[str, list[SourceRef]] = {}
    for r in doc.relationships:
        if r.relationship_type == RelationshipType.GENERATED_FROM and r.related_spdx_element_id in by_id:
            src = by_id[r.related_spdx_element_id]
            sha = next((c.value for c in src.checksums if c.algorithm == ChecksumAlgorithm.SHA256), "")
            uri = src.source_info.removeprefix(UPSTREAM_SOURCE) if src.source_info else src.name
            generated.setdefault(r.spdx_element_id, []).append(SourceRef(uri, sha))
    components, top = [], None
    for p in doc.packages:
        if p.primary_package_purpose == PackagePurpose.CONTAINER:
            top = p
        purl, upstream, cpe, fixes = _spdx_identity(p.external_references)
        if purl is None or purl.namespace != NAMESPACE:
            continue
        sha = next((c.value for c in p.checksums if c.algorithm == ChecksumAlgorithm.SHA256), "")
        lic = p.license_declared
        origin = (p.source_info or "").removeprefix(BUILT_FROM) or purl.name
        components.append(
            Component(
                name=p.name,
                version=p.version or purl.version or "",
                origin=origin,
                content_sha256=sha,
                license="" if isinstance(lic, SpdxNoAssertion) or lic is None else str(lic),
                sources=tuple(sorted(generated.get(p.spdx_id, []))),
                homepage=p.homepage if isinstance(p.homepage, str) else None,
                description=p.summary or "",
                arch=(purl.qualifiers or {}).get("arch", ""),
                upstream=upstream,
                cpe=cpe,
                fixes=fixes,
            )
        )
    kind = "image" if top else "package"
    name, version = (top.name, top.version or "") if top else (components[0].name if components else "", "")
    return Subject(
        kind, name, version, int(doc.creation_info.created.replace(tzinfo=UTC).timestamp()), tuple(components)
    )
