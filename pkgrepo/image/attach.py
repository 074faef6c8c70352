"""OCI 1.1 artifacts that refer to an image: its SBOMs, provenance and VEX in the registry.

Each document is one artifact manifest: `artifactType` names what it is, the one layer is
the document, the config is the OCI empty descriptor and `subject` is the image manifest,
so a registry with the referrers API (`GET /v2/REPO/referrers/DIGEST`) lists it. Registries
without that API (Debian's docker-registry 2.8) get the distribution spec's fallback: an
image index tagged `sha256-HEX` that lists the referrers, updated on each push. Readers try
the API first and fall back to the tag, then check every listed artifact's `subject`
themselves: a registry's list is a hint, never trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pkgrepo.errors import BadInput
from pkgrepo.image.registry import MEDIA_INDEX, MEDIA_MANIFEST, Registry, listed, sha256, tag_for

EMPTY_MEDIA = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
PREDICATE = "in-toto.io/predicate-type"
TITLE = "org.opencontainers.image.title"
# artifactType of each kind pkgrepo attaches; provenance and VEX are DSSE envelopes told
# apart by the predicate type annotation
KINDS = {
    "spdx": (SPDX, None),
    "cyclonedx": (CYCLONEDX, None),
    "provenance": (DSSE, "https://slsa.dev/provenance/v1"),
    "vex": (DSSE, "https://openvex.dev/ns/v0.2.0"),
}


def _compact(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Referrer:
    digest: str
    artifact_type: str
    annotations: dict[str, str]
    size: int

    @property
    def kind(self) -> str | None:
        for kind, (media, predicate) in KINDS.items():
            if media == self.artifact_type and self.annotations.get(PREDICATE) == predicate:
                return kind
        return None

    def descriptor(self) -> dict:
        d = {"mediaType": MEDIA_MANIFEST, "digest": self.digest, "size": self.size}
        d["artifactType"] = self.artifact_type
        if self.annotations:
            d["annotations"] = self.annotations
        return d


def artifact_manifest(kind: str, name: str, blob_digest: str, size: int, subject: dict) -> bytes:
    media, predicate = KINDS[kind]
    annotations = {TITLE: name, **({PREDICATE: predicate} if predicate else {})}
    return _compact(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "artifactType": media,
            "config": {"mediaType": EMPTY_MEDIA, "digest": sha256(EMPTY), "size": len(EMPTY)},
            "layers": [
                {"mediaType": media, "digest": blob_digest, "size": size, "annotations": {TITLE: name}}
            ],
            "subject": subject,
            "annotations": annotations,
        }
    )


def attach(
    registry: Registry, image_digest: str, image_size: int, documents: list[tuple[str, str, bytes]]
) -> list[Referrer]:
    """Push `documents` ((kind, file name, bytes)) as artifacts referring to the image, and list
    them in the fallback tag (replacing earlier artifacts of the same kinds)."""
    subject = {"mediaType": MEDIA_MANIFEST, "digest": image_digest, "size": image_size}
    registry.put_blob(EMPTY)
    pushed = []
    for kind, name, data in documents:
        blob = registry.put_blob(data)
        manifest = artifact_manifest(kind, name, blob, len(data), subject)
        digest = registry.put_manifest(sha256(manifest), manifest, MEDIA_MANIFEST)
        media, predicate = KINDS[kind]
        pushed.append(
            Referrer(
                digest, media, {TITLE: name, **({PREDICATE: predicate} if predicate else {})}, len(manifest)
            )
        )
    kinds = {r.kind for r in pushed}
    kept = [r for r in fallback_referrers(registry, image_digest) if r.kind not in kinds]
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [r.descriptor() for r in [*kept, *pushed]],
    }
    registry.put_manifest(tag_for(image_digest), _compact(index), MEDIA_INDEX)
    return pushed


def _parse_index(where: str, doc: dict) -> list[Referrer]:
    out = []
    for m in listed(doc, "manifests", where):
        try:
            out.append(
                Referrer(
                    str(m["digest"]),
                    str(m.get("artifactType") or ""),
                    {str(k): str(v) for k, v in (m.get("annotations") or {}).items()},
                    int(m.get("size") or 0),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BadInput(
                f"{where}: a referrers entry is malformed; the registry's list is damaged"
            ) from None
    return out


def fallback_referrers(registry: Registry, image_digest: str) -> list[Referrer]:
    found = registry.manifest_json(tag_for(image_digest))
    return [] if found is None else _parse_index(f"{registry.ref.name}:{tag_for(image_digest)}", found[1])


def referrers(registry: Registry, image_digest: str) -> list[Referrer]:
    """The artifacts the registry says refer to the image: the referrers API, else the tag."""
    api = registry.referrers_api(image_digest)
    if api is not None:
        return _parse_index(f"{registry.ref.name} referrers of {image_digest[:19]}", api)
    return fallback_referrers(registry, image_digest)


def fetch(registry: Registry, image_digest: str, ref: Referrer) -> bytes:
    """The document of one referrer, after checking that its manifest (digest-checked) really
    refers to `image_digest` and has the artifact type it was listed with."""
    found = registry.manifest_json(ref.digest)
    where = f"{registry.ref.name}@{ref.digest[:19]}"
    if found is None:
        raise BadInput(f"{where}: listed as a referrer of {image_digest[:19]} but missing from the registry")
    doc = found[1]
    subject = (doc.get("subject") or {}).get("digest") if isinstance(doc.get("subject"), dict) else None
    if subject != image_digest:
        raise BadInput(
            f"{where}: listed as a referrer of {image_digest[:19]} but its subject is {str(subject)[:19]}; "
            "the registry's referrers list lies"
        )
    if doc.get("artifactType") != ref.artifact_type:
        raise BadInput(f"{where}: artifactType {doc.get('artifactType')!r} differs from the referrers list")
    layers = listed(doc, "layers", where)
    if len(layers) != 1 or not isinstance(layers[0], dict):
        raise BadInput(f"{where}: expected one layer (the document), found {len(layers)}")
    return registry.blob(str(layers[0].get("digest")))
