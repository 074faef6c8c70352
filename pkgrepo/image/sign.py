"""Sigstore signatures of images, stored as registry attachments, as the containers tools read them.

The format is containers/image's (skopeo, podman, CRI-O; `sigstoreSigned` in
containers-policy.json), which is cosign's: a payload

    {"critical": {"identity": {"docker-reference": REPO:TAG}, "image": {"docker-manifest-digest":
     DIGEST}, "type": "cosign container image signature"}, "optional": {"creator": ..., "timestamp": ...}}

signed with ECDSA P-256/SHA-256 (or Ed25519), base64 in the layer annotation
`dev.cosignproject.cosign/signature` of an OCI manifest tagged `sha256-HEX.sig` whose
layers are the payloads (`application/vnd.dev.cosign.simplesigning.v1+json`).

Debian's skopeo 1.9 reads and verifies these but has signing compiled out ("Debian-local
change: sigstore disabled"), so pkgrepo writes the attachment itself, byte for byte the
structure containers/image's `putSignaturesToSigstoreAttachments` writes, and skopeo's
policy verifies it.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pkgrepo import __version__
from pkgrepo.errors import BadInput
from pkgrepo.image.registry import MEDIA_MANIFEST, Ref, Registry, listed, tag_for
from pkgrepo.image.sigkeys import KeyList, KeyRecord, Signing, decrypt_private_key, verify_signature
from pkgrepo.safeio import untrusted_json

SIGNATURE_MEDIA = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_KEY = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"


def _compact(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def payload(identity: str, digest: str, timestamp: int) -> bytes:
    return _compact(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": SIGNATURE_TYPE,
            },
            "optional": {"creator": f"pkgrepo {__version__}", "timestamp": timestamp},
        }
    )


PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def private_key(signing: Signing) -> PrivateKey:
    """The current image key, decrypted (checked before anything is pushed)."""
    try:
        passphrase = signing.passphrase.read_bytes().splitlines()[0]
        pem = signing.key.read_bytes()
    except (OSError, IndexError) as e:
        raise BadInput(f"{signing.key}: cannot read the image signing key ({e})") from None
    key = serialization.load_der_private_key(decrypt_private_key(signing.key, pem, passphrase), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key


def _existing(registry: Registry, tag: str, manifest: dict) -> tuple[list[dict], dict]:
    """The layers and config of the signatures already attached under `tag`, which the registry
    answered: a shape other than a signature attachment's is refused, not signed over."""
    try:
        layers = manifest.get("layers") or []
        config = untrusted_json(registry.blob(str(manifest["config"]["digest"])))
        diff_ids = config.setdefault("rootfs", {"type": "layers"}).setdefault("diff_ids", [])
        if not (isinstance(layers, list) and all(isinstance(x, dict) for x in layers)):
            raise ValueError("its layers are not a list of descriptors")
        if not isinstance(diff_ids, list):
            raise ValueError("its config's rootfs.diff_ids is not a list")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadInput(
            f"registry {registry.ref.host}: {tag} is not a signature attachment ({e}); "
            "delete that tag or sign into another repository"
        ) from None
    return list(layers), config


def sign(registry: Registry, identity: str, digest: str, key: PrivateKey) -> str:
    """Add a signature of `digest` as `identity` (REPO:TAG) to the image's sigstore attachment;
    return the attachment manifest's digest."""
    body = payload(identity, digest, int(time.time()))
    raw = (
        key.sign(body, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else key.sign(body)
    )
    annotations = {SIGNATURE_KEY: base64.b64encode(raw).decode()}
    tag = tag_for(digest, ".sig")
    existing = registry.manifest_json(tag)
    if existing is None:
        layers: list[dict] = []
        config: dict = {"rootfs": {"type": "layers", "diff_ids": []}}
    else:
        layers, config = _existing(registry, tag, existing[1])
    layer = {"mediaType": SIGNATURE_MEDIA, "digest": registry.put_blob(body), "size": len(body)}
    layers.append({**layer, "annotations": annotations})
    config.setdefault("rootfs", {"type": "layers"}).setdefault("diff_ids", []).append(layer["digest"])
    config_bytes = _compact(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA,
            "digest": registry.put_blob(config_bytes),
            "size": len(config_bytes),
        },
        "layers": layers,
    }
    return registry.put_manifest(tag, _compact(manifest), MEDIA_MANIFEST)


@dataclass(frozen=True)
class Verified:
    key: KeyRecord
    identity: str
    timestamp: int | None


def _identity_matches(ref: Ref, identity: str) -> bool:
    """containers/image's default `matchRepoDigestOrExact`: by tag, the same REPO:TAG; by digest,
    the same repository."""
    if ref.tag is not None:
        return identity == f"{ref.name}:{ref.tag}"
    name = identity.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name == ref.name


def verify(registry: Registry, ref: Ref, digest: str, keys: KeyList, now: int) -> Verified:
    """The signature that makes `digest` ours as `ref`, or BadInput saying why there is none."""
    found = registry.manifest_json(tag_for(digest, ".sig"))
    where = f"{ref}"
    if found is None:
        raise BadInput(
            f"{where}: the image {digest[:19]} is not signed (no {tag_for(digest, '.sig')} attachment)"
        )
    reasons: list[str] = []
    for layer in listed(found[1], "layers", f"{where}: the signature attachment"):
        if not isinstance(layer, dict) or layer.get("mediaType") != SIGNATURE_MEDIA:
            continue
        try:
            raw = base64.b64decode((layer.get("annotations") or {})[SIGNATURE_KEY], validate=True)
        except (KeyError, ValueError, TypeError):
            reasons.append("a signature layer without a valid signature annotation")
            continue
        body = registry.blob(str(layer.get("digest")))
        signer = next((k for k in keys.keys if verify_signature(k.public_key(), raw, body)), None)
        if signer is None:
            reasons.append("a signature by a key not in the image key list")
            continue
        state = signer.status(now)
        if state != "valid":
            reasons.append(f"a signature by image key {signer.keyid[:16]}, which is {state}")
            continue
        try:
            doc = untrusted_json(body)
            critical = doc["critical"]
            signed_digest = critical["image"]["docker-manifest-digest"]
            identity = critical["identity"]["docker-reference"]
            kind = critical["type"]
            stamp = (doc.get("optional") or {}).get("timestamp")
        except (ValueError, KeyError, TypeError):
            reasons.append("a signed payload that is not a container image signature")
            continue
        if kind != SIGNATURE_TYPE:
            reasons.append(f"a signed payload of type {kind!r}")
        elif signed_digest != digest:
            reasons.append(f"a signature for another image ({str(signed_digest)[:19]})")
        elif not _identity_matches(ref, str(identity)):
            reasons.append(f"a signature for {identity}, not {ref}")
        elif isinstance(stamp, int) and stamp >= signer.expires:
            reasons.append(f"a signature made after image key {signer.keyid[:16]} expired")
        else:
            return Verified(signer, str(identity), stamp if isinstance(stamp, int) else None)
    detail = "; ".join(sorted(set(reasons))) or "no signature layers"
    raise BadInput(f"{where}: no valid signature of {digest[:19]}: {detail}")
