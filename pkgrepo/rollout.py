"""Patch to image: rebuild a patched recipe and its reverse build dependencies, publish, re-assemble.

`rollout` builds the named recipes and every recipe that build-depends on them, through
`pkgrepo.builder.session.build_all`: the builder's cache key covers the recipe, its patches
and the exact build-dependency packages, so a reverse dependency whose inputs did not change
is a cache hit. It then publishes what was built and re-assembles every root under the
images directory whose closure changed, writing its SBOMs beside it (`ROOT.spdx.json`,
`ROOT.cdx.json`).

Two kinds of image are re-assembled: root filesystem trees under the images directory (their
requested packages resolved again, as `pkgrepo upgrade` resolves them), and the prod OCI image
of every image spec given, written as a layout `IMAGES/<spec name>` when its digest changed,
with the image's SBOMs beside it. With a repository, both are installed from the repository
just published to, served on loopback and read through the verifying client, so what the SBOMs
and scans attest is what a client gets; without one, from the packages directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.attest.cdx import cyclonedx_document
from pkgrepo.attest.evidence import evidence_files
from pkgrepo.attest.inventory import rootfs_subject
from pkgrepo.attest.spdx import spdx_document
from pkgrepo.builder.builder import Builder
from pkgrepo.builder.plan import plan
from pkgrepo.builder.session import build_all
from pkgrepo.errors import BadInput
from pkgrepo.image.apply import closure, populate, requested_names
from pkgrepo.package.rootfs import installed_in
from pkgrepo.recipe.load import Recipes
from pkgrepo.repo.repository import Repository, Vouched
from pkgrepo.repo.serve import serving
from pkgrepo.resolve.sources import PackageSource, open_source


@dataclass
class ImageUpdate:
    path: Path
    changed: bool
    digest: str
    packages: dict[str, str]  # name -> version, after


@dataclass
class RolloutReport:
    rebuilt: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    images: list[ImageUpdate] = field(default_factory=list)
    build_seconds: float = 0.0
    publish_seconds: float = 0.0
    assemble_seconds: float = 0.0
    vouched: Vouched | None = None  # what the publish read and signed, for the web catalogue

    def to_dict(self) -> dict:
        return {
            "rebuilt": self.rebuilt,
            "cached": self.cached,
            "published": self.published,
            "images": [
                {"path": str(i.path), "changed": i.changed, "digest": i.digest, "packages": i.packages}
                for i in self.images
            ],
            "seconds": {
                "build": round(self.build_seconds, 3),
                "publish": round(self.publish_seconds, 3),
                "assemble": round(self.assemble_seconds, 3),
            },
        }


def reverse_build_deps(recipes: Recipes, names: list[str]) -> list[str]:
    """`names` and every recipe whose build plan includes one of them."""
    out = set(names)
    for other in recipes:
        if set(plan(recipes, [other], with_tests=False)) & set(names):
            out.add(other)
    return sorted(out)


def tree_digest(root: Path) -> str:
    """sha256 over every path of a root with its type, mode and content (or link target)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if p.is_symlink():
                h.update(f"{rel}\0l\0{os.readlink(p)}\n".encode())
            elif p.is_dir():
                h.update(f"{rel}\0d\0{st.st_mode & 0o7777:o}\n".encode())
            else:
                h.update(
                    f"{rel}\0f\0{st.st_mode & 0o7777:o}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode()
                )
    return h.hexdigest()


def write_image_sboms(root: Path) -> None:
    subject = rootfs_subject(root)
    root.with_name(root.name + ".spdx.json").write_bytes(spdx_document(subject))
    root.with_name(root.name + ".cdx.json").write_bytes(cyclonedx_document(subject))


def _update_image(root: Path, source: PackageSource) -> ImageUpdate:
    db = installed_in(root)
    names = requested_names(db, root)
    result = closure(source, names)
    after = {p.name: p.version for p in result.packages}
    if after == {n: r.version for n, r in db.items()}:
        return ImageUpdate(root, False, tree_digest(root), after)
    fresh = root.with_name(f".{root.name}.new")
    old = root.with_name(f".{root.name}.old")
    shutil.rmtree(fresh, ignore_errors=True)
    populate(fresh, result, source, names)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(root, old)
    os.replace(fresh, root)
    shutil.rmtree(old)
    write_image_sboms(root)
    return ImageUpdate(root, True, tree_digest(root), after)


def _update_layout(spec_path: Path, images: Path, source: PackageSource) -> ImageUpdate:
    """The prod image of a spec, rebuilt from `source`; written when its digest changed."""
    from pkgrepo.image.build import build_image
    from pkgrepo.image.oci import read_layout
    from pkgrepo.image.outputs import is_layout, write_outputs
    from pkgrepo.image.spec import load_spec
    from pkgrepo.image.unpack import as_root

    with tempfile.TemporaryDirectory(prefix="pkgrepo-rollout-") as work:
        built = build_image(load_spec(spec_path), source, "prod", Path(work))
        target = images / built.spec.name
        after = {p.name: p.full_version for p in built.assembled.packages}
        if is_layout(target) and read_layout(target).digest == built.image.digest:
            return ImageUpdate(target, False, built.image.digest, after)
        write_outputs(built, target, None, None, None)
    with as_root(target) as root:
        subject = rootfs_subject(root, built.spec.name)
    target.with_name(target.name + ".spdx.json").write_bytes(spdx_document(subject))
    target.with_name(target.name + ".cdx.json").write_bytes(cyclonedx_document(subject))
    return ImageUpdate(target, True, built.image.digest, after)


@contextlib.contextmanager
def _published(repo: Repository | None, packages: Path) -> Iterator[PackageSource]:
    """Where images are installed from: the repository, served on loopback and read through the
    verifying client from its own exported root (trusted state in a temporary cache), recorded
    as `native:REPO`; without a repository, the packages directory."""
    if repo is None:
        yield open_source(packages=packages)
        return
    with tempfile.TemporaryDirectory(prefix="pkgrepo-rollout-client-") as tmp, serving(repo.root) as url:
        trust = Path(tmp) / "root.json"
        repo.export_root(trust)
        source = open_source(repository=url, trust=trust, cache=Path(tmp))
        yield source.relabelled(f"native:{repo.root}")


def rollout(
    builder: Builder,
    recipes: Recipes,
    names: list[str],
    repo: Repository | None,
    images: Path | None,
    test: bool = True,
    specs: list[Path] | None = None,
) -> RolloutReport:
    report = RolloutReport()
    start = time.monotonic()
    results = build_all(builder, recipes, reverse_build_deps(recipes, names), test=test)
    report.rebuilt = [r.name for r in results if not r.cached]
    report.cached = [r.name for r in results if r.cached]
    report.build_seconds = time.monotonic() - start
    start = time.monotonic()
    if repo is not None:
        fresh = [p for r in results if not r.cached for p in r.packages]
        if fresh:
            published = repo.publish(fresh, sidecars=evidence_files)
            report.published, report.vouched = published.added, published.vouched
    report.publish_seconds = time.monotonic() - start
    start = time.monotonic()
    if images is not None:
        if not images.is_dir():
            raise BadInput(f"{images}: images directory does not exist; pass --images DIR")
        from pkgrepo.image.outputs import is_layout

        with _published(repo, builder.out) as source:
            for root in sorted(p for p in images.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if not is_layout(root):  # OCI layouts come from their specs
                    report.images.append(_update_image(root, source))
            for spec in specs or []:
                report.images.append(_update_layout(spec, images, source))
    elif specs:
        raise BadInput("--image-spec writes its image into --images DIR; pass --images")
    report.assemble_seconds = time.monotonic() - start
    return report
