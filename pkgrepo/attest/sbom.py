"""SBOM documents: SPDX 2.3 JSON (spdx-tools) and CycloneDX 1.6 JSON (cyclonedx-python-lib).

Both are built from `Subject`/`Component` records, validated by their own library's
validator before a byte is written, and serialised deterministically: timestamps are the
subject's `created` (SOURCE_DATE_EPOCH), lists are sorted, and the SPDX namespace and the
CycloneDX serial number derive from a digest of the content. Reading accepts either
format (validated the same way) and gives the records back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType, Pedigree
from cyclonedx.model.impact_analysis import ImpactAnalysisState
from cyclonedx.model.license import LicenseExpression
from cyclonedx.model.vulnerability import BomTarget, Vulnerability, VulnerabilityAnalysis
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
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

from pkgrepo import __version__
from pkgrepo.attest.component import NAMESPACE, Component, SourceRef, Subject
from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.safeio import parse_json, read_regular

TOOL = f"pkgrepo-{__version__}"
ORIGIN = "pkgrepo:origin"  # CycloneDX property: the recipe that built a package


def _stable(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _digest(subject: Subject) -> str:
    data = {
        "kind": subject.kind,
        "name": subject.name,
        "version": subject.version,
        "created": subject.created,
        "components": sorted((c.to_dict() for c in subject.components), key=lambda d: d["name"]),
    }
    return hashlib.sha256(_stable(data)).hexdigest()


def _sources(subject: Subject) -> list[SourceRef]:
    return sorted({s for c in subject.components for s in c.sources})


# --- SPDX 2.3 -----------------------------------------------------------------------------------


def _spdx_id(kind: str, text: str) -> str:
    return f"SPDXRef-{kind}-" + "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in text)


def _license(text: str):
    try:
        return spdx_licensing.parse(text, validate=True) if text else SpdxNoAssertion()
    except ExpressionError:
        return SpdxNoAssertion()


def spdx_document(subject: Subject) -> bytes:
    created = datetime.fromtimestamp(subject.created, UTC)
    digest = _digest(subject)
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
                source_info=f"built by pkgrepo from recipe {c.origin}",
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
    for s in _sources(subject):
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
                source_info=f"upstream source {s.uri}",
                external_references=[
                    ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", _source_purl(s))
                ],
            )
        )
    doc = Document(info, packages=packages, relationships=relationships)
    problems = validate_full_spdx_document(doc)
    if problems:
        raise PkgrepoError(f"SPDX document for {subject.name} is not valid: {problems[0].validation_message}")
    return _stable(DocumentConverter().convert(doc))


UPSTREAM = "upstream project"  # the comment that marks the upstream purl among a package's refs
FIXED = "fixed in this package"  # the comment of an advisory ref the recipe declares fixed
ADVISORY_URL = "https://www.cve.org/CVERecord?id="
OSV_URL = "https://osv.dev/vulnerability/"


def _fix_url(ident: str) -> str:
    return (ADVISORY_URL if ident.startswith("CVE-") else OSV_URL) + ident


def _spdx_refs(c: Component) -> list[ExternalPackageRef]:
    pm, sec = ExternalPackageRefCategory.PACKAGE_MANAGER, ExternalPackageRefCategory.SECURITY
    refs = [ExternalPackageRef(pm, "purl", c.purl)]
    if c.upstream:
        refs.append(ExternalPackageRef(pm, "purl", c.upstream, UPSTREAM))
    if c.cpe:
        refs.append(ExternalPackageRef(sec, "cpe23Type", c.cpe))
    refs += [ExternalPackageRef(sec, "advisory", _fix_url(i), FIXED) for i in c.fixes]
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
            fixes.append(r.locator.rsplit("=", 1)[-1].rsplit("/", 1)[-1])
    return ours, upstream, cpe, tuple(sorted(fixes))


def _source_purl(s: SourceRef) -> str:
    if s.uri.startswith("pkg:"):
        return s.uri
    return PackageURL(
        "generic", None, s.name, None, {"download_url": s.uri, "checksum": f"sha256:{s.sha256}"}
    ).to_string()


def _read_spdx(path: Path, data: dict) -> Subject:
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
            uri = src.source_info.removeprefix("upstream source ") if src.source_info else src.name
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
        origin = (p.source_info or "").removeprefix("built by pkgrepo from recipe ") or purl.name
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


# --- CycloneDX 1.6 ------------------------------------------------------------------------------


def _cdx_component(c: Component) -> CdxComponent:
    refs = [
        ExternalReference(
            type=ExternalReferenceType.SOURCE_DISTRIBUTION,
            url=XsUri(s.uri),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=s.sha256)],
        )
        for s in sorted(c.sources)
    ]
    if c.homepage:
        refs.append(ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(c.homepage)))
    pedigree = None
    if c.upstream:  # the upstream release this package was built from, by its own identity
        up = PackageURL.from_string(c.upstream)
        ancestor = CdxComponent(
            type=ComponentType.LIBRARY,
            name=up.name,
            group=up.namespace,
            version=up.version,
            purl=up,
            bom_ref=f"upstream:{c.purl}",
            cpe=c.cpe,
        )
        pedigree = Pedigree(ancestors=[ancestor])
    return CdxComponent(
        type=ComponentType.LIBRARY,
        name=c.name,
        version=c.version,
        bom_ref=c.purl,
        purl=PackageURL.from_string(c.purl),
        cpe=c.cpe,
        pedigree=pedigree,
        description=c.description or None,
        licenses=[LicenseExpression(c.license)] if c.license else [],
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.content_sha256)],
        external_references=refs,
        group=NAMESPACE,
        properties=[Property(name=ORIGIN, value=c.origin)],
    )


def _cdx_fixes(components: list[Component]) -> list[Vulnerability]:
    """One `vulnerabilities` entry per id a recipe declares fixed, resolved for its packages."""
    holders: dict[str, list[str]] = {}
    for c in components:
        for i in c.fixes:
            holders.setdefault(i, []).append(c.purl)
    return [
        Vulnerability(
            id=ident,
            bom_ref=f"fix:{ident}",
            analysis=VulnerabilityAnalysis(
                state=ImpactAnalysisState.RESOLVED, detail="fixed by the recipe (a patch or its release)"
            ),
            affects=[BomTarget(ref=ref) for ref in sorted(refs)],
        )
        for ident, refs in sorted(holders.items())
    ]


def cyclonedx_document(subject: Subject) -> bytes:
    digest = _digest(subject)
    top = CdxComponent(
        type=ComponentType.CONTAINER if subject.kind == "image" else ComponentType.LIBRARY,
        name=subject.name,
        version=subject.version or None,
        bom_ref=f"{subject.kind}:{subject.name}",
    )
    bom = Bom(
        serial_number=uuid.UUID(digest[:32]),
        metadata=BomMetaData(component=top, timestamp=datetime.fromtimestamp(subject.created, UTC)),
    )
    bom.metadata.tools.components.add(
        CdxComponent(type=ComponentType.APPLICATION, name="pkgrepo", version=__version__)
    )
    parts = [_cdx_component(c) for c in sorted(subject.components, key=lambda c: c.name)]
    for p in parts:
        bom.components.add(p)
    bom.register_dependency(top, parts)
    for v in _cdx_fixes(list(subject.components)):
        bom.vulnerabilities.add(v)
    text = JsonV1Dot6(bom).output_as_string()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise PkgrepoError(f"CycloneDX document for {subject.name} is not valid: {error}")
    return _stable(json.loads(text))


def _read_cdx(path: Path, text: str, data: dict) -> Subject:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise BadInput(f"{path}: not a valid CycloneDX 1.6 document: {str(error).splitlines()[0]}")
    meta = data.get("metadata", {})
    top = meta.get("component", {})
    fixed: dict[str, list[str]] = {}
    for v in data.get("vulnerabilities", []):
        if (v.get("analysis") or {}).get("state") == "resolved":
            for target in v.get("affects", []):
                fixed.setdefault(target["ref"], []).append(v["id"])
    components = []
    for c in data.get("components", []):
        purl = PackageURL.from_string(c["purl"]) if c.get("purl") else None
        if purl is None or purl.namespace != NAMESPACE:
            continue
        sha = next((h["content"] for h in c.get("hashes", []) if h["alg"] == "SHA-256"), "")
        sources, homepage = [], None
        for ref in c.get("externalReferences", []):
            if ref["type"] == "source-distribution":
                sources.append(SourceRef(ref["url"], next(h["content"] for h in ref.get("hashes", []))))
            elif ref["type"] == "website":
                homepage = ref["url"]
        lic = next((x["expression"] for x in c.get("licenses", []) if "expression" in x), "")
        origin = next((p["value"] for p in c.get("properties", []) if p.get("name") == ORIGIN), purl.name)
        components.append(
            Component(
                name=c["name"],
                version=c.get("version", ""),
                license=lic,
                origin=origin,
                content_sha256=sha,
                sources=tuple(sorted(sources)),
                homepage=homepage,
                description=c.get("description", ""),
                arch=(purl.qualifiers or {}).get("arch", ""),
                upstream=next(
                    (a["purl"] for a in (c.get("pedigree") or {}).get("ancestors", []) if a.get("purl")), None
                ),
                cpe=c.get("cpe"),
                fixes=tuple(sorted(fixed.get(c.get("bom-ref", ""), []))),
            )
        )
    created = (
        datetime.fromisoformat(meta["timestamp"]) if meta.get("timestamp") else datetime.fromtimestamp(0, UTC)
    )
    kind = "image" if top.get("type") == "container" else "package"
    return Subject(
        kind, top.get("name", ""), top.get("version", ""), int(created.timestamp()), tuple(components)
    )


def read_sbom(path: Path) -> Subject:
    """An SPDX 2.3 or CycloneDX 1.6 JSON document, validated, as records."""
    try:
        raw = read_regular(path, "SBOM")  # no-follow, a regular file of bounded size
    except FileNotFoundError:
        raise BadInput(f"{path}: cannot read SBOM (no such file)") from None
    data = parse_json(raw, path, "SBOM")
    text = raw.decode()
    try:
        if isinstance(data, dict) and "spdxVersion" in data:
            return _read_spdx(path, data)
        if isinstance(data, dict) and data.get("bomFormat") == "CycloneDX":
            return _read_cdx(path, text, data)
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as e:
        raise BadInput(
            f"{path}: the SBOM validates but a pkgrepo package entry is malformed "
            f"({type(e).__name__}: {e}); regenerate it with `pkgrepo sbom`"
        ) from None
    raise BadInput(f"{path}: neither SPDX (spdxVersion) nor CycloneDX (bomFormat) JSON; pass an SBOM")
