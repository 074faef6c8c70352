"""The image's VEX: an OpenVEX document of what the current advisories say about its packages.

Made at push time (advisories change after an image is built) by scanning the image's SBOM
against the advisories and VEX statements (`pkgrepo scan`'s data, repo-data/ by default),
one statement per finding with its status, wrapped in an in-toto statement whose subject is
the image and signed with the provenance key (DSSE), so a tampered VEX cannot silence a
finding. With no finding there is no statement to make and no VEX is attached (OpenVEX
requires at least one statement).
"""

from __future__ import annotations

import json
from pathlib import Path

from pkgrepo.attest.component import package_purl
from pkgrepo.errors import BadInput

OPENVEX = "https://openvex.dev/ns/v0.2.0"
STATEMENT = "https://in-toto.io/Statement/v1"


def _timestamp(epoch: int) -> str:
    from pkgrepo.image.oci import timestamp

    return timestamp(epoch)


def openvex(sbom: Path, image_digest: str) -> dict | None:
    from pkgrepo.attest.advisories import data_dir, load_advisories

    advisories = load_advisories(data_dir("advisories"))
    if not advisories:  # nothing can match: skip reading the SBOM (its libraries are slow to load)
        return None
    from pkgrepo.attest.sbom import read_sbom
    from pkgrepo.attest.scan import scan
    from pkgrepo.attest.vex import load_vex

    subject = read_sbom(sbom)
    findings = scan(subject, advisories, load_vex(data_dir("vex")))
    arch = {c.name: c.arch for c in subject.components}
    statements = []
    for f in findings:
        s: dict = {
            "vulnerability": {"name": f.advisory},
            "products": [{"@id": package_purl(f.package, f.version, arch.get(f.package, "x86_64"))}],
            "status": f.status,
        }
        if f.status == "not_affected":
            s["justification"] = f.note
        elif f.status == "affected":
            s["action_statement"] = f"update {f.package} to {f.fixed}" if f.fixed else f.note or "no fix yet"
        elif f.note:
            s["status_notes"] = f.note
        statements.append(s)
    if not statements:
        return None
    doc = {
        "@context": OPENVEX,
        "@id": f"urn:pkgrepo:vex:{image_digest}",
        "author": "pkgrepo",
        "timestamp": _timestamp(subject.created),
        "version": 1,
        "statements": statements,
    }
    check(f"VEX of {image_digest[:19]}", doc)
    return doc


def check(where: str, doc: object) -> None:
    import jsonschema

    from pkgrepo.attest.vex import SCHEMA

    schema = json.loads(SCHEMA.read_text())
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(doc)
    )
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "document"
        raise BadInput(f"{where}: not a valid OpenVEX document at {at}: {error.message}")


def signed_vex(sbom: Path, image_name: str, image_digest: str) -> bytes | None:
    """The DSSE envelope of the image's VEX statement, or None when no advisory applies."""
    from pkgrepo.attest import dsse

    doc = openvex(sbom, image_digest)
    if doc is None:
        return None
    statement = {
        "_type": STATEMENT,
        "subject": [{"name": image_name, "digest": {"sha256": image_digest.removeprefix("sha256:")}}],
        "predicateType": OPENVEX,
        "predicate": doc,
    }
    body = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return dsse.sign(body, dsse.signer())
