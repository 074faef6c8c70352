"""What the builder and the publisher attach to each package.

At build time (`pkgrepo.builder.builder`):
- `manifest_with_sbom` writes the package's SPDX and CycloneDX SBOMs into the staged tree at
  `var/lib/pkgrepo/sbom/NAME.{spdx,cdx}.json` and returns the manifest that includes them, so
  each package carries its SBOM in its payload and an installed root holds one per package;
- `write_evidence` writes, beside each package file, the same SBOMs (`FILE.spdx.json`,
  `FILE.cdx.json`) and its signed provenance (`FILE.intoto.json`, a DSSE envelope), plus the
  provenance public key (`provenance.pub`) in the packages directory.

At publish time (`pkgrepo.repo.repository`), `publish_evidence` adds those files as TUF
targets beside the package (`packages/FILE.spdx.json`, ...) and the public key as
`keys/provenance-KEYID.pub`, so clients fetch all of them verified by the signed metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pkgrepo.attest.component import Component, SourceRef, Subject, content_digest, package_purl
from pkgrepo.digest import sha256_file
from pkgrepo.package.archive import read_head, scan_tree
from pkgrepo.package.extract import own_sboms as sbom_paths
from pkgrepo.package.meta import FileEntry, PackageInfo
from pkgrepo.recipe.model import Recipe
from pkgrepo.resolve.model import Package

if TYPE_CHECKING:
    pass

SUFFIXES = (".spdx.json", ".cdx.json", ".intoto.json")
PUBLIC_KEY = "provenance.pub"


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def package_subject(recipe: Recipe, info: PackageInfo, manifest: list[FileEntry]) -> Subject:
    component = Component(
        name=info.name,
        version=info.full_version,
        license=info.license,
        origin=recipe.name,
        content_sha256=content_digest(manifest),
        sources=tuple(SourceRef.from_recipe(s) for s in recipe.sources),
        homepage=info.homepage,
        description=info.description,
        arch=info.arch,
        upstream=info.upstream,
        cpe=info.cpe,
        fixes=tuple(info.fixes),
    )
    return Subject("package", info.name, info.full_version, info.build_date, (component,))


def manifest_with_sbom(
    staged: Path,
    files: list[str],
    recipe: Recipe,
    info: PackageInfo,
    write_file: Callable[[Path, str, bytes], None],
) -> list[FileEntry]:
    """The manifest of `files`, plus the package's own SBOMs, written into `staged` with
    `write_file(staged, rel, data)`, which must not follow links (`pkgrepo.builder.staged.write_file`)."""
    from pkgrepo.attest.cdx import cyclonedx_document
    from pkgrepo.attest.spdx import spdx_document

    manifest = scan_tree(staged, files)
    subject = package_subject(recipe, info, manifest)
    spdx, cdx = sbom_paths(info.name)
    # The staged tree was written by the build: links in it are never followed (a link at
    # var/lib/pkgrepo/sbom would otherwise make the host write wherever it points).
    write_file(staged, spdx, spdx_document(subject))
    write_file(staged, cdx, cyclonedx_document(subject))
    merged = {e.path: e for e in [*manifest, *scan_tree(staged, [spdx, cdx])]}
    return [merged[p] for p in sorted(merged)]


def write_evidence(
    recipe_path: Path,
    recipe: Recipe,
    staged: Path,
    packages: list[Path],
    deps: list[Package],
    read_file: Callable[[Path, str], bytes],
    build_key: str,
    key_dir: Path | None = None,
) -> None:
    """Beside each package: its SBOMs (read from `staged` with `read_file(staged, rel)`, which must
    not follow links) and its signed provenance, which names `build_key` (the build's cache key:
    the package itself does not carry it, so the same output is the same bytes)."""
    from pkgrepo.attest import dsse
    from pkgrepo.attest.provenance import Provenance, Resource, content_subject, host_toolchain

    signer = dsse.signer(key_dir)
    dependencies = [Resource("source", SourceRef.from_recipe(s).uri, s.sha256) for s in recipe.sources]
    # A patch that fixes vulnerabilities says which, signed: `pkgrepo scan` counts a declared
    # fix only where the provenance holds the patch that makes it.
    dependencies += [
        Resource(
            f"patch:{p.file}",
            sha256=sha256_file((recipe_path.parent / p.file).resolve()),
            annotations={"fixes": " ".join(sorted(p.fixes))} if p.fixes else {},
        )
        for p in recipe.patches
    ]
    dependencies += [
        Resource("build-dependency", package_purl(d.name, d.version), sha256_file(d.location))
        for d in sorted(deps, key=lambda d: d.name)
    ]
    dependencies += host_toolchain()
    for pkg in packages:
        info, manifest = read_head(pkg)
        for rel, suffix in zip(sbom_paths(info.name), SUFFIXES, strict=False):
            _write(pkg.with_name(pkg.name + suffix), read_file(staged, rel))
        statement = Provenance(
            subjects=(
                Resource(pkg.name, sha256=sha256_file(pkg)),
                Resource(content_subject(info.name, info.full_version), sha256=content_digest(manifest)),
            ),
            recipe_path=recipe_path.name,
            recipe_sha256=sha256_file(recipe_path),
            dependencies=tuple(dependencies),
            build_key=build_key,
            source_date_epoch=info.build_date,
        )
        _write(pkg.with_name(pkg.name + ".intoto.json"), dsse.sign(statement.to_bytes(), signer))
    if packages:
        _write(packages[0].parent / PUBLIC_KEY, dsse.public_key_bytes(signer.public_key))


def evidence_files(files: list[Path]) -> list[tuple[str, Path]]:
    """(target path, file) for every evidence file beside the packages being published."""
    from pkgrepo.attest import dsse

    out: list[tuple[str, Path]] = []
    keys = set()
    for f in files:
        out += [
            (f"packages/{f.name}{s}", f.with_name(f.name + s))
            for s in SUFFIXES
            if f.with_name(f.name + s).is_file()
        ]
        if (f.parent / PUBLIC_KEY).is_file():
            keys.add(f.parent / PUBLIC_KEY)
    for k in sorted(keys):
        out.append((f"keys/provenance-{dsse.load_public_key(k).keyid}.pub", k))
    return out
