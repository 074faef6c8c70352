"""Build an image from a spec: resolve, fetch, install, minimize, write base files, layer.

`build_image(spec, source, profile, work)` is the whole job (pypa/installer's
shape): the closure comes from the minimizer, package bytes from the source
(a directory or the verifying client), the root is filled through
`apply.populate` (the one install path), and the image is made of layers planned by `layers`.
A dev build assembles the prod image first: its layers are dev's lower layers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgrepo.digest import sha256_file
from pkgrepo.errors import BadInput
from pkgrepo.image.apply import populate
from pkgrepo.image.basefiles import BaseFile, base_files, write_base_files
from pkgrepo.image.layers import group_packages, layer_tar, plan_layers
from pkgrepo.image.minimize_files import Report, minimize_files
from pkgrepo.image.oci import COMPRESSION, PROFILE_KEY, Image, make_image, make_layer, timestamp
from pkgrepo.image.packages import dev_closure, prod_closure
from pkgrepo.image.spec import DEFAULT_PATH, ImageSpec, resolve_user
from pkgrepo.image.tree import Node, walk
from pkgrepo.package.meta import PackageInfo
from pkgrepo.package.rootfs import DB
from pkgrepo.resolve.explain import install_order
from pkgrepo.resolve.minimize import Result
from pkgrepo.resolve.profiles import Profile
from pkgrepo.resolve.sources import PackageSource

CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Assembled:
    """One profile's root filesystem, installed and read back."""

    root: Path
    tree: dict[str, Node]
    owners: dict[str, str]  # file -> package name
    packages: list[PackageInfo]
    order: list[str]  # package names, dependencies first
    report: Report
    archives: dict[str, str]  # package name -> sha256 of the archive installed (for provenance)


@dataclass(frozen=True)
class BuiltImage:
    spec: ImageSpec
    profile: Profile
    image: Image
    assembled: Assembled
    epoch: int
    base_digest: str | None  # dev: the prod image it extends

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "profile": self.profile,
            "digest": self.image.digest,
            "size": self.image.size,
            "epoch": self.epoch,
            "base_digest": self.base_digest,
            "compression": COMPRESSION,
            "layers": [
                {"digest": x.blob.digest, "size": len(x.blob.data), "packages": x.title}
                for x in self.image.layers
            ],
            "packages": [{"name": p.name, "version": p.full_version} for p in self.assembled.packages],
            "minimized": self.assembled.report.to_dict(),
        }


def _requested(result: Result) -> set[str]:
    return {p.name for p in result.packages if any(p.satisfies(r) for r in result.roots)}


def _order(result: Result) -> list[str]:
    names = {p.key: p.name for p in result.packages}
    groups, _cycles = install_order(result)
    return [names[k] for g in groups for k in g]


def assemble(
    spec: ImageSpec,
    result: Result,
    source: PackageSource,
    root: Path,
    minimize: bool,
    requested: set[str],
    extra: Sequence[BaseFile] = (),
) -> Assembled:
    filled = populate(root, result, source, requested)
    owned = {name: list(rec.files) for name, rec in filled.installed.items()}
    report = minimize_files(root, owned, requested, spec.keep, spec.exclude) if minimize else Report([])
    if report.removed:
        _record_removed(root, {r.path for r in report.removed})
    has_os_release = any(os.path.lexists(root / p) for p in ("etc/os-release", "usr/lib/os-release"))
    attrs = write_base_files(root, [*base_files(spec, has_os_release), *extra])
    owners = {f: name for name, files in owned.items() for f in files}
    return Assembled(
        root,
        walk(root, attrs),
        owners,
        sorted((c.info for c in filled.checked), key=lambda i: i.name),
        _order(result),
        report,
        {c.info.name: sha256_file(c.path) for c in filled.checked},
    )


def _record_removed(root: Path, removed: set[str]) -> None:
    """The image's package database names only what it holds: minimization removed these files
    from the packages that own them (a scanner or `pkgrepo sbom` reads the database back)."""
    from dataclasses import replace

    from pkgrepo.package.meta import canonical_json
    from pkgrepo.package.rootfs import installed_in

    db = installed_in(root)
    kept = {n: replace(p, files=tuple(f for f in p.files if f not in removed)) for n, p in db.items()}
    doc = {"format": 1, "packages": {n: p.to_dict() for n, p in sorted(kept.items())}}
    (root / DB).write_bytes(canonical_json(doc))


def source_date_epoch(packages: list[PackageInfo]) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        if not env.isdigit():
            raise BadInput(f"SOURCE_DATE_EPOCH={env!r}: must be a whole number of seconds")
        return int(env)
    return max((p.build_date for p in packages), default=0)


def _config(
    spec: ImageSpec,
    profile: Profile,
    tree: dict[str, Node],
    epoch: int,
    labels: dict[str, str],
    titles: list[str],
) -> dict[str, Any]:
    user = resolve_user(spec, spec.accounts.run_as if profile == "prod" else spec.dev.run_as)
    assert user is not None  # checked when the spec was loaded
    env = {"PATH": DEFAULT_PATH}
    if CA_BUNDLE in tree:
        env["SSL_CERT_FILE"] = "/" + CA_BUNDLE
    env.update(spec.environment)
    conf: dict[str, Any] = {
        "User": f"{user.uid}:{user.group}",
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": spec.work_dir,
        "Labels": labels,
    }
    if spec.entrypoint:
        conf["Entrypoint"] = spec.entrypoint
    if spec.cmd:
        conf["Cmd"] = spec.cmd
    created = timestamp(epoch)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": conf,
        "history": [
            {"created": created, "created_by": f"pkgrepo image build --profile {profile}", "comment": t}
            for t in titles
        ],
    }


def _labels(spec: ImageSpec, source: PackageSource, epoch: int, base: Image | None) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.created": timestamp(epoch),
        "org.opencontainers.image.title": spec.name,
    }
    if source.url:
        labels["org.opencontainers.image.source"] = source.url
    if base is not None:
        labels["org.opencontainers.image.base.digest"] = base.digest
    labels.update(spec.annotations)
    return labels


def _image(
    spec: ImageSpec,
    profile: Profile,
    source: PackageSource,
    asm: Assembled,
    layers: list,
    epoch: int,
    base: Image | None,
) -> Image:
    labels = _labels(spec, source, epoch, base)
    config = _config(spec, profile, asm.tree, epoch, labels, [x.title for x in layers])
    return make_image(profile, layers, config, {**labels, PROFILE_KEY: profile})


def build_image(
    spec: ImageSpec, source: PackageSource, profile: Profile, work: Path, dev_files: Sequence[BaseFile] = ()
) -> BuiltImage:
    """Build the `profile` image of `spec`; roots are assembled below `work` (an empty directory).
    `dev_files` (the package manager's /etc/pkgrepo) are written into dev only."""
    prod_result = prod_closure(spec, source)
    requested = _requested(prod_result)
    prod = assemble(spec, prod_result, source, work / "prod", minimize=True, requested=requested)
    epoch = source_date_epoch(prod.packages)
    versions = {p.name: p.full_version for p in prod.packages}
    plans = plan_layers(
        prod.tree,
        prod.owners,
        group_packages(prod.order, spec.layers - 1),
        "base files and package database",
        versions,
    )
    prod_layers = [make_layer(p.title, layer_tar(prod.tree, p.paths, epoch)) for p in plans]
    prod_image = _image(spec, "prod", source, prod, prod_layers, epoch, None)
    if profile == "prod":
        return BuiltImage(spec, "prod", prod_image, prod, epoch, None)
    dev_result = dev_closure(spec, source, prod_result)
    dev = assemble(
        spec,
        dev_result,
        source,
        work / "dev",
        minimize=False,
        requested=requested | _requested(dev_result) - set(versions),
        extra=dev_files,
    )
    added = [n for n in dev.order if n not in versions]
    dev_versions = {p.name: p.full_version for p in dev.packages}
    plans = plan_layers(
        dev.tree,
        dev.owners,
        group_packages(added, spec.layers - 1),
        "dev: files prod leaves out and the package database",
        dev_versions,
        below=prod.tree,
    )
    dev_layers = [*prod_layers, *(make_layer(p.title, layer_tar(dev.tree, p.paths, epoch)) for p in plans)]
    return BuiltImage(
        spec,
        "dev",
        _image(spec, "dev", source, dev, dev_layers, epoch, prod_image),
        dev,
        epoch,
        prod_image.digest,
    )


def build_from_spec(spec_path: Path, profile: Profile, packages: Path | None, repo_url: str | None,
                    trust: Path | None, work: Path) -> BuiltImage:  # fmt: skip
    """The `profile` image of the spec file at `spec_path`, its packages from the command line's
    `--packages`/`--repo` or the spec's own source; roots are assembled below `work`."""
    from pkgrepo.image.packages import dev_repository_files, spec_source
    from pkgrepo.image.spec import load_spec

    spec = load_spec(spec_path)
    source = spec_source(spec, spec_path.parent, packages, repo_url, trust)
    dev_files = dev_repository_files(spec, spec_path.parent, source, trust) if profile == "dev" else []
    return build_image(spec, source, profile, work, dev_files)
