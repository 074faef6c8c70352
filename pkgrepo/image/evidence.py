"""An image's own evidence, made by `pkgrepo image build` and carried in the OCI layout.

`LAYOUT/evidence/` holds, beside the image's blobs (OCI tools ignore the directory):

- `sbom.spdx.json`, `sbom.cdx.json`: the image's SBOMs (every installed package), made from
  the assembled root with the evidence room's public functions;
- `provenance.intoto.json`: the image's SLSA v1 provenance in an in-toto v1 statement, in a
  DSSE envelope signed with the provenance key packages are signed with. Subject: the image
  manifest digest. External parameters: the spec (path and sha256) and the profile.
  Resolved dependencies: every package by purl and archive sha256, and every base file
  pkgrepo wrote (`base-file:/etc/passwd`, ...) by sha256. Byproducts: the two SBOMs by
  sha256, so an SBOM fetched from a registry is bound to the signed statement.

`pkgrepo image push` attaches these to the pushed image; `pkgrepo verify docker://REF`
checks them (pkgrepo.image.remote).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pkgrepo import __version__
from pkgrepo.attest.component import package_purl
from pkgrepo.attest.provenance import SLSA, STATEMENT
from pkgrepo.digest import sha256_file
from pkgrepo.errors import BadInput
from pkgrepo.image.build import BuiltImage

DIR = "evidence"
SPDX, CDX, PROVENANCE = "sbom.spdx.json", "sbom.cdx.json", "provenance.intoto.json"
BUILD_TYPE = "urn:pkgrepo:build-type:image:v1"
BUILDER = "urn:pkgrepo:builder:image"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def statement(built: BuiltImage, spec_path: Path, sboms: dict[str, bytes]) -> dict:
    """The in-toto statement of a built image."""
    owned = set(built.assembled.owners)
    deps = [
        {
            "name": "package",
            "uri": package_purl(p.name, p.full_version, p.arch),
            "digest": {"sha256": built.assembled.archives[p.name]},
        }
        for p in built.assembled.packages
    ]
    deps += [
        {"name": f"base-file:/{path}", "digest": {"sha256": sha256_bytes(node.read())}}
        for path, node in sorted(built.assembled.tree.items())
        if node.kind == "file" and path not in owned
    ]
    return {
        "_type": STATEMENT,
        "subject": [
            {"name": f"{built.spec.name}:{built.profile}", "digest": {"sha256": _hex(built.image.digest)}}
        ],
        "predicateType": SLSA,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "spec": {"path": spec_path.name, "digest": {"sha256": sha256_file(spec_path)}},
                    "profile": built.profile,
                },
                "internalParameters": {"sourceDateEpoch": built.epoch},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER, "version": {"pkgrepo": __version__}},
                "metadata": {"invocationId": built.image.digest},
                "byproducts": [
                    {"name": name, "digest": {"sha256": sha256_bytes(data)}}
                    for name, data in sorted(sboms.items())
                ],
            },
        },
    }


def make_evidence(built: BuiltImage, spec_path: Path) -> dict[str, bytes]:
    """The files of `LAYOUT/evidence/` for a built image whose root is still assembled."""
    from pkgrepo.attest import dsse
    from pkgrepo.attest.cdx import cyclonedx_document
    from pkgrepo.attest.inventory import rootfs_subject
    from pkgrepo.attest.spdx import spdx_document

    subject = rootfs_subject(built.assembled.root, f"{built.spec.name}:{built.profile}", built.image.digest)
    sboms = {SPDX: spdx_document(subject), CDX: cyclonedx_document(subject)}
    body = json.dumps(statement(built, spec_path, sboms), sort_keys=True, separators=(",", ":"))
    return {**sboms, PROVENANCE: dsse.sign(body.encode() + b"\n", dsse.signer())}


@dataclass(frozen=True)
class Evidence:
    """The evidence files of a layout (None where a file is absent)."""

    spdx: bytes | None
    cdx: bytes | None
    provenance: bytes | None


def read_evidence(layout: Path) -> Evidence:
    def get(name: str) -> bytes | None:
        path = layout / DIR / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise BadInput(f"{path}: not a regular file; rebuild the layout with `pkgrepo image build`")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BadInput(f"{path}: cannot read it ({e.strerror})") from None

    return Evidence(get(SPDX), get(CDX), get(PROVENANCE))


@dataclass(frozen=True)
class ImageProvenance:
    """What `pkgrepo verify` needs of an image statement."""

    subject: str  # sha256:HEX
    packages: dict[str, str]  # purl -> archive sha256
    byproducts: dict[str, str]  # name -> sha256

    @classmethod
    def from_statement(cls, where: str, data: object) -> ImageProvenance:
        try:
            assert isinstance(data, dict)
            if data["_type"] != STATEMENT or data["predicateType"] != SLSA:
                raise BadInput(f"{where}: not an in-toto v1 statement with SLSA v1 provenance")
            build = data["predicate"]["buildDefinition"]
            if build["buildType"] != BUILD_TYPE:
                raise BadInput(f"{where}: buildType {build['buildType']!r} is not {BUILD_TYPE}")
            subjects = data["subject"]
            if len(subjects) != 1:
                raise BadInput(f"{where}: expected one subject (the image), found {len(subjects)}")
            return cls(
                "sha256:" + str(subjects[0]["digest"]["sha256"]),
                {
                    str(d["uri"]): str(d["digest"]["sha256"])
                    for d in build["resolvedDependencies"]
                    if d["name"] == "package"
                },
                {
                    str(b["name"]): str(b["digest"]["sha256"])
                    for b in data["predicate"]["runDetails"].get("byproducts", [])
                },
            )
        except (KeyError, TypeError, ValueError, AssertionError) as e:
            raise BadInput(f"{where}: image provenance is malformed (missing or wrong {e})") from None
