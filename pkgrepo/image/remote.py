"""`pkgrepo verify docker://REF`: an image checked through the registry, no local layout.

The chain, each link refused with one line (BadInput, exit 2):
1. the manifest the registry serves for REF (by digest: bytes checked against it);
2. a sigstore signature of that digest, as REF, by a valid image key (pkgrepo.image.sign);
3. the referrers (API or `sha256-HEX` tag), each artifact's own `subject` checked;
4. the image provenance: DSSE signed by a trusted provenance key, its subject the digest;
5. the SBOMs: their sha256 are the provenance's byproducts;
6. every package of the SBOM: in the provenance's package set, and its own signed package
   provenance (pkgrepo.attest.verify's evidence sources) names the same archive sha256;
7. the VEX, when attached: signed, about this digest, a valid OpenVEX document.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from securesystemslib.signer import Key

from pkgrepo.attest import dsse
from pkgrepo.attest.component import package_purl
from pkgrepo.attest.verify import EvidenceSource, package_filename
from pkgrepo.errors import BadInput
from pkgrepo.image.attach import Referrer, fetch, referrers
from pkgrepo.image.evidence import CDX, SPDX, ImageProvenance
from pkgrepo.image.registry import Ref, Registry
from pkgrepo.image.sigkeys import KeyList
from pkgrepo.safeio import untrusted_json


@dataclass
class KeyedEvidence:
    """Package provenance from a directory, keys chosen by id among the trusted ones."""

    keys: dict[str, Key]
    where: Path

    def provenance(self, filename: str) -> tuple[Path, bytes]:
        path = self.where / f"{filename}.intoto.json"
        try:
            return path, path.read_bytes()
        except OSError as e:
            raise BadInput(
                f"{path}: no provenance for {filename} ({e.strerror}); pass --provenance DIR"
            ) from None

    def key(self, keyid: str) -> Key:
        if keyid not in self.keys:
            raise BadInput(f"provenance key {keyid[:16]} is not trusted; pass its public key with --key PUB")
        return self.keys[keyid]


@dataclass
class Report:
    ref: str
    digest: str
    signed_by: str
    checked: list[str] = field(default_factory=list)


def _open_statement(where: str, data: bytes, source: EvidenceSource) -> dict:
    env = dsse.read_envelope(Path(where), data)
    if not env.signatures:
        raise BadInput(f"{where}: the envelope is not signed")
    dsse.verify(Path(where), env, source.key(next(iter(env.signatures))))
    try:
        doc = untrusted_json(env.payload)
    except ValueError as e:
        raise BadInput(f"{where}: signed payload is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: signed payload is not a JSON object")
    return doc


def _one(found: list[Referrer], kind: str, ref: str, digest: str) -> Referrer:
    matching = [r for r in found if r.kind == kind]
    if not matching:
        raise BadInput(
            f"{ref}: no {kind} is attached to {digest[:19]}; push the image with `pkgrepo image push`"
        )
    if len(matching) > 1:
        raise BadInput(
            f"{ref}: {len(matching)} {kind} artifacts are listed for {digest[:19]}; refusing to choose"
        )
    return matching[0]


def verify_remote(
    text: str, insecure: bool, keys: KeyList, source: EvidenceSource, now: int | None = None
) -> Report:
    from pkgrepo.attest.provenance import Provenance
    from pkgrepo.attest.sbom import read_sbom
    from pkgrepo.image.sign import verify as verify_signature
    from pkgrepo.image.vexdoc import OPENVEX, check

    ref = Ref.parse(text)
    registry = Registry(ref, insecure)
    found = registry.manifest(ref.digest or ref.tag or "latest")
    if found is None:
        raise BadInput(f"{ref}: no such image in the registry")
    digest = found[0]
    if ref.tag is None and ref.digest is None:
        ref = Ref(ref.host, ref.repository, "latest")
    signed = verify_signature(registry, ref, digest, keys, int(time.time()) if now is None else now)
    report = Report(str(ref), digest, signed.key.keyid)
    report.checked.append(f"signature by image key {signed.key.keyid[:16]} as {signed.identity}")
    listed = referrers(registry, digest)

    prov_ref = _one(listed, "provenance", str(ref), digest)
    where = f"{ref.name}@{prov_ref.digest[:19]} (provenance)"
    statement = _open_statement(where, fetch(registry, digest, prov_ref), source)
    prov = ImageProvenance.from_statement(where, statement)
    if prov.subject != digest:
        raise BadInput(f"{where}: the provenance is for {prov.subject[:19]}, not the image {digest[:19]}")
    report.checked.append(f"image provenance {prov_ref.digest[:19]}: subject is the image")

    for kind, name in (("spdx", SPDX), ("cyclonedx", CDX)):
        r = _one(listed, kind, str(ref), digest)
        data = fetch(registry, digest, r)
        if hashlib.sha256(data).hexdigest() != prov.byproducts.get(name):
            raise BadInput(
                f"{ref.name}@{r.digest[:19]} ({kind}): the SBOM differs from the one the signed provenance "
                f"names ({name}); the attachment was tampered with"
            )
        if kind == "spdx":
            spdx = data
    report.checked.append("SBOMs (SPDX, CycloneDX): bound to the provenance by sha256")

    with tempfile.TemporaryDirectory(prefix="pkgrepo-verify-") as tmp:
        path = Path(tmp) / SPDX
        path.write_bytes(spdx)
        subject = read_sbom(path)
    for c in subject.components:
        purl = package_purl(c.name, c.version, c.arch)
        archive = prov.packages.get(purl)
        if archive is None:
            raise BadInput(
                f"{ref}: SBOM package {c.name} {c.version} is not in the image provenance's package set"
            )
        pwhere, pdata = source.provenance(package_filename(c.name, c.version, c.arch))
        pkg = Provenance.from_statement(pwhere, _open_statement(str(pwhere), pdata, source))
        if not any(s.sha256 == archive for s in pkg.subjects):
            raise BadInput(
                f"{pwhere}: {c.name} {c.version}'s provenance does not name the archive the image "
                f"was built from (sha256 {archive[:12]})"
            )
    report.checked.append(f"{len(subject.components)} packages: each with verified package provenance")

    vexes = [r for r in listed if r.kind == "vex"]
    if len(vexes) > 1:
        raise BadInput(f"{ref}: {len(vexes)} VEX artifacts are listed for {digest[:19]}; refusing to choose")
    for r in vexes:
        vwhere = f"{ref.name}@{r.digest[:19]} (vex)"
        doc = _open_statement(vwhere, fetch(registry, digest, r), source)
        subjects = [
            s.get("digest", {}).get("sha256") for s in doc.get("subject") or [] if isinstance(s, dict)
        ]
        if doc.get("predicateType") != OPENVEX or subjects != [digest.removeprefix("sha256:")]:
            raise BadInput(f"{vwhere}: not an OpenVEX statement about {digest[:19]}")
        check(vwhere, doc.get("predicate"))
        report.checked.append(f"VEX {r.digest[:19]}: signed, about the image")
    return report
