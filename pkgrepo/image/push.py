"""Publish an OCI layout to a registry: the image with skopeo (the manifest is copied as is:
same digest), then its evidence as artifacts referring to it and, with `sign`, its sigstore
signature (pkgrepo.image.attach, pkgrepo.image.sign)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.image.oci import read_layout
from pkgrepo.safeio import untrusted_json


@dataclass(frozen=True)
class Pushed:
    ref: str
    digest: str
    signed_by: str | None = None  # image key id
    attached: list[tuple[str, str]] = field(default_factory=list)  # (kind, artifact manifest digest)


def _skopeo_copy(layout: Path, ref: str, insecure: bool) -> str:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise PkgrepoError("skopeo is not installed; apt-get install skopeo")
    with tempfile.TemporaryDirectory(prefix="pkgrepo-push-") as tmp:
        digest_file = Path(tmp) / "digest"
        args = [skopeo, "copy", "--quiet", "--digestfile", str(digest_file)]
        if insecure:
            args.append("--dest-tls-verify=false")
        proc = subprocess.run([*args, f"oci:{layout}", f"docker://{ref}"], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise PkgrepoError(f"pushing {layout} to {ref} failed: {last}")
        return digest_file.read_text().strip()


def _check_provenance(path: Path, data: bytes, digest: str) -> None:
    """The layout's provenance must be an envelope about this image before it is attached (and
    the image signed): a layout whose evidence/ was swapped is refused, nothing pushed."""
    from pkgrepo.attest import dsse
    from pkgrepo.image.evidence import ImageProvenance

    env = dsse.read_envelope(path, data)
    try:
        statement = untrusted_json(env.payload)
    except ValueError as e:
        raise BadInput(f"{path}: the signed payload is not JSON ({e})") from None
    subject = ImageProvenance.from_statement(str(path), statement).subject
    if subject != digest:
        raise BadInput(
            f"{path}: is the provenance of {subject[:19]}, not of the layout's image {digest[:19]}"
        )


def push(
    layout: Path, ref: str, insecure: bool = False, sign: bool = False, keys_dir: Path | None = None
) -> Pushed:
    """Copy the layout's image to `ref` (REGISTRY/REPO[:TAG]), attach its evidence, sign it."""
    from pkgrepo.image.attach import attach
    from pkgrepo.image.evidence import CDX, PROVENANCE, SPDX, read_evidence
    from pkgrepo.image.registry import Ref, Registry
    from pkgrepo.image.sigkeys import ImageKeys
    from pkgrepo.image.sign import private_key

    image = read_layout(layout)
    target = Ref.parse(ref)
    if target.digest is not None:
        raise BadInput(f"{ref}: push to a tag (REGISTRY/REPOSITORY[:TAG]), not a digest")
    target = Ref(target.host, target.repository, target.tag or "latest")
    evidence = read_evidence(layout)
    signing = ImageKeys(keys_dir).signing() if sign else None
    key = private_key(signing) if signing is not None else None  # usable before anything is pushed
    if sign and evidence.provenance is None:
        raise BadInput(
            f"{layout}: has no evidence/ (image provenance); rebuild it with `pkgrepo image build`"
        )
    if evidence.provenance is not None:
        _check_provenance(layout / "evidence" / PROVENANCE, evidence.provenance, image.digest)
    pushed = _skopeo_copy(layout, str(target), insecure)
    if pushed != image.digest:
        raise PkgrepoError(f"{ref}: the registry holds {pushed}, not the layout's {image.digest}")
    registry = Registry(target, insecure)
    documents = [
        (kind, name, data)
        for kind, name, data in (
            ("spdx", SPDX, evidence.spdx),
            ("cyclonedx", CDX, evidence.cdx),
            ("provenance", PROVENANCE, evidence.provenance),
        )
        if data is not None
    ]
    if evidence.spdx is not None:
        from pkgrepo.image.vexdoc import signed_vex

        vex = signed_vex(layout / "evidence" / SPDX, f"{target.name}:{target.tag}", image.digest)
        if vex is not None:
            documents.append(("vex", "vex.intoto.json", vex))
    size = (layout / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).stat().st_size
    attached = attach(registry, image.digest, size, documents) if documents else []
    signed_by = None
    if signing is not None and key is not None:
        from pkgrepo.image.sign import sign as sign_image

        sign_image(registry, f"{target.name}:{target.tag}", image.digest, key)
        signed_by = signing.keyid
    return Pushed(str(target), image.digest, signed_by, [(a.kind or "", a.digest) for a in attached])
