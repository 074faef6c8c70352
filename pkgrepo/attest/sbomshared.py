"""What the two SBOM formats share: the tool's name, the stable JSON bytes, the content digest
that names a document, and the advisory URL a declared fix is written as."""

from __future__ import annotations

import hashlib
import json

from pkgrepo import __version__
from pkgrepo.attest.component import SourceRef, Subject

TOOL = f"pkgrepo-{__version__}"
ADVISORY_URL = "https://www.cve.org/CVERecord?id="
OSV_URL = "https://osv.dev/vulnerability/"


def stable_json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def subject_digest(subject: Subject) -> str:
    """The digest of a subject's content: the SPDX namespace and the CycloneDX serial number."""
    data = {
        "kind": subject.kind,
        "name": subject.name,
        "version": subject.version,
        "created": subject.created,
        "components": sorted((c.to_dict() for c in subject.components), key=lambda d: d["name"]),
    }
    return hashlib.sha256(stable_json(data)).hexdigest()


def subject_sources(subject: Subject) -> list[SourceRef]:
    return sorted({s for c in subject.components for s in c.sources})


def fix_url(ident: str) -> str:
    """The advisory page of a vulnerability id: CVE's for CVE ids, OSV's for the rest."""
    return (ADVISORY_URL if ident.startswith("CVE-") else OSV_URL) + ident


def fix_id(url: str) -> str:
    """The vulnerability id at the end of an advisory URL (`fix_url`'s, or one like it)."""
    return url.rsplit("=", 1)[-1].rsplit("/", 1)[-1]
