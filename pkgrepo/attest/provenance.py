"""SLSA provenance v1 in an in-toto Statement v1, as typed records.

Subjects: the package archive (`PackageInfo.filename`, its sha256) and its
installed content (`NAME@VERSION:content`, the content digest of `component`), so both a
package file and an installed root can be checked against it. External parameters: the
recipe's path (relative to the recipes directory) and sha256. Resolved dependencies: every
source (URI, sha256), every patch, every build-dependency package (purl, archive sha256)
and the host toolchain (tool identity and Debian package version).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from packageurl import PackageURL

from pkgrepo import __version__, hosttools
from pkgrepo.errors import BadInput

STATEMENT = "https://in-toto.io/Statement/v1"
SLSA = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:pkgrepo:build-type:recipe:v1"
BUILDER = "urn:pkgrepo:builder:bubblewrap"
DEBIAN_TOOLS = ("gcc", "binutils", "make", "linux-libc-dev")


@dataclass(frozen=True)
class Resource:
    """An in-toto ResourceDescriptor: what a build consumed or produced."""

    name: str
    uri: str | None = None
    sha256: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {"name": self.name}
        if self.uri:
            out["uri"] = self.uri
        if self.sha256:
            out["digest"] = {"sha256": self.sha256}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Resource:
        return cls(
            str(data["name"]),
            data.get("uri"),
            (data.get("digest") or {}).get("sha256"),
            {str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
        )


@dataclass(frozen=True)
class Provenance:
    subjects: tuple[Resource, ...]
    recipe_path: str
    recipe_sha256: str
    dependencies: tuple[Resource, ...]
    build_key: str
    source_date_epoch: int

    def to_statement(self) -> dict:
        return {
            "_type": STATEMENT,
            "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in self.subjects],
            "predicateType": SLSA,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "recipe": {"path": self.recipe_path, "digest": {"sha256": self.recipe_sha256}}
                    },
                    "internalParameters": {"sourceDateEpoch": self.source_date_epoch},
                    "resolvedDependencies": [d.to_dict() for d in self.dependencies],
                },
                "runDetails": {
                    "builder": {"id": BUILDER, "version": {"pkgrepo": __version__}},
                    "metadata": {"invocationId": self.build_key},
                },
            },
        }

    @classmethod
    def from_statement(cls, where: Path, data: object) -> Provenance:
        try:
            assert isinstance(data, dict)
            if data["_type"] != STATEMENT or data["predicateType"] != SLSA:
                raise BadInput(f"{where}: not an in-toto v1 statement with SLSA v1 provenance")
            pred = data["predicate"]
            build = pred["buildDefinition"]
            if build["buildType"] != BUILD_TYPE:
                raise BadInput(f"{where}: buildType {build['buildType']!r} is not {BUILD_TYPE}")
            recipe = build["externalParameters"]["recipe"]
            return cls(
                subjects=tuple(Resource(s["name"], sha256=s["digest"]["sha256"]) for s in data["subject"]),
                recipe_path=str(recipe["path"]),
                recipe_sha256=str(recipe["digest"]["sha256"]),
                dependencies=tuple(Resource.from_dict(d) for d in build["resolvedDependencies"]),
                build_key=str(pred["runDetails"]["metadata"]["invocationId"]),
                source_date_epoch=int(build["internalParameters"]["sourceDateEpoch"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError, OverflowError) as e:
            raise BadInput(
                f"{where}: provenance statement is malformed (missing or wrong {e}); "
                "re-download it or rebuild the package"
            ) from None

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_statement(), sort_keys=True, separators=(",", ":")) + "\n").encode()

    def by_name(self, name: str) -> list[Resource]:
        return [d for d in self.dependencies if d.name == name]


def content_subject(name: str, version: str) -> str:
    return f"{name}@{version}:content"


@cache
def host_toolchain() -> tuple[Resource, ...]:
    """The host tools every build uses, with their Debian package versions (dpkg-query)."""
    identity = hosttools.identity()
    packages = list(DEBIAN_TOOLS)
    try:
        owner = subprocess.run(
            ["dpkg-query", "-S", os.path.realpath("/usr/bin/gcc")],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split(":", 1)[0]
        if owner and owner not in packages:
            packages.append(owner)
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n", *packages],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        out = ""
    tools = {"gcc": "gcc", "binutils": "binutils", "make": "make", "linux-libc-dev": "kernel-headers"}
    found = []
    for line in sorted(out.splitlines()):
        pkg, version, arch = line.split("\t")
        if not version:
            continue
        note = {"identity": identity[tools[pkg]]} if pkg in tools else {}
        found.append(
            Resource(
                "toolchain",
                PackageURL("deb", "debian", pkg, version, {"arch": arch}).to_string(),
                annotations=note,
            )
        )
    return tuple(found)
