"""SBOMs as CycloneDX 1.6 JSON (cyclonedx-python-lib): written from `Subject` records and read back.

Validated against the CycloneDX 1.6 schema before a byte is written and after every read. The
recipe that built a package travels as the property `ORIGIN`; declared fixes as resolved
`vulnerabilities`.
"""

from __future__ import annotations

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
from packageurl import PackageURL

from pkgrepo import __version__
from pkgrepo.attest.component import NAMESPACE, Component, SourceRef, Subject
from pkgrepo.attest.sbomshared import stable_json, subject_digest
from pkgrepo.errors import BadInput, PkgrepoError

ORIGIN = "pkgrepo:origin"  # a component's property: the recipe that built the package
FIX_DETAIL = "fixed by the recipe (a patch or its release)"  # a declared fix's analysis detail


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
            analysis=VulnerabilityAnalysis(state=ImpactAnalysisState.RESOLVED, detail=FIX_DETAIL),
            affects=[BomTarget(ref=ref) for ref in sorted(refs)],
        )
        for ident, refs in sorted(holders.items())
    ]


def cyclonedx_document(subject: Subject) -> bytes:
    digest = subject_digest(subject)
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
    return stable_json(json.loads(text))


def read_cyclonedx(path: Path, text: str, data: dict) -> Subject:
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
