"""`pkgrepo sbom`, `verify`, `scan`, `affected` and `rollout`: the supply-chain evidence."""

from __future__ import annotations

from pathlib import Path

import click

from pkgrepo.cli.options import (
    CACHE,
    JSON,
    KEYS,
    OUT,
    PROVENANCE_DIR,
    PROVENANCE_KEY,
    RECIPES,
    REPO_URL,
    TRUST,
    emit,
)
from pkgrepo.package.meta import PACKAGE_SUFFIX
from pkgrepo.paths import default_packages

ADVISORIES = click.option(
    "--advisories",
    "advisories_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of OSV advisories (default repo-data/advisories).",
)
VEX = click.option(
    "--vex",
    "vex_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of OpenVEX documents (default repo-data/vex).",
)


def _is_package(path: Path) -> bool:
    return path.is_file() and path.name.endswith(PACKAGE_SUFFIX)


def _subject(target: Path):
    """An installed root, a package file or an SBOM file, as SBOM records."""
    from pkgrepo.attest.inventory import rootfs_subject
    from pkgrepo.attest.sbom import read_sbom

    if target.is_dir():
        from pkgrepo.image.unpack import as_root

        with as_root(target) as root:
            return rootfs_subject(root)
    if _is_package(target):
        return read_sbom(target.with_name(target.name + ".spdx.json"))
    return read_sbom(target)


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["spdx", "cyclonedx"]), default="spdx", show_default=True)
@click.option("--name", default=None, help="Image name (default: the root's directory name).")
@click.option("--image-version", "version", default="", help="Image version recorded in the SBOM.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write here, not stdout.")
def sbom(target, fmt, name, version, output) -> None:
    """The SBOM of an installed root (every installed package) or of a package file (SPDX 2.3 or CycloneDX 1.6)."""
    from dataclasses import replace

    from pkgrepo.attest.cdx import cyclonedx_document
    from pkgrepo.attest.spdx import spdx_document

    subject = _subject(target)
    if target.is_dir():
        subject = replace(subject, name=name or subject.name, version=version)
    data = (spdx_document if fmt == "spdx" else cyclonedx_document)(subject)
    if output:
        output.write_bytes(data)
    else:
        click.echo(data.decode(), nl=False)


@click.command()
@click.argument("target", metavar="PKG|ROOT|LAYOUT|docker://REF")
@click.option(
    "--recipes",
    "recipes_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Check the recipe and source digests against this recipe tree.",
)
@click.option(
    "--provenance",
    "prov",
    type=click.Path(path_type=Path),
    default=None,
    help="Provenance file, or a directory of them (default: beside the package).",
)
@click.option(
    "--key",
    "key_files",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Provenance public key (default: this machine's provenance key); for docker:// repeatable.",
)
@REPO_URL
@TRUST
@click.option(
    "--image-keys",
    type=click.Path(path_type=Path),
    default=None,
    help="docker://: the image key list (keys.json; default this machine's, $PKGREPO_KEYS/image).",
)
@click.option("--insecure", is_flag=True, help="docker://: plain HTTP (a loopback test registry).")
def verify(target, recipes_dir, prov, key_files, repo_url, trust, image_keys, insecure) -> None:
    """Check a package's, an installed root's or a pushed image's signed provenance; exit 2 on failure.

    For docker://REF (through the registry): its sigstore signature, attached provenance and
    SBOMs, and every package's provenance (from --repo, or --provenance DIR with --key)."""
    from pkgrepo.attest import dsse
    from pkgrepo.attest.verify import LocalEvidence, RepoEvidence, verify_package, verify_rootfs
    from pkgrepo.errors import BadInput
    from pkgrepo.resolve.sources import open_source

    if target.startswith("docker://"):
        from pkgrepo.cli.image import verify_image

        verify_image(target, prov, key_files, repo_url, trust, image_keys, insecure)
        return
    target = Path(target)
    if not target.exists():
        raise BadInput(f"{target}: no such file or directory")
    if len(key_files) > 1:
        raise BadInput("--key: give one provenance key for a package or a root")
    key_file = key_files[0] if key_files else None
    if repo_url and (key_file or prov):
        raise BadInput(
            "pass --repo URL (provenance and key from the repository) or --key/--provenance, not both"
        )
    if repo_url:
        source = RepoEvidence(open_source(repository=repo_url, trust=trust).verifying_client())
    else:
        if key_file is None and not (dsse.default_key_dir() / f"{dsse.ROLE}.pem").is_file():
            raise BadInput(
                f"no provenance key on this machine ({dsse.default_key_dir()}); pass --key PUB or --repo URL"
            )
        key = dsse.load_public_key(key_file) if key_file else dsse.signer().public_key
        if prov is None and target.is_dir():
            raise BadInput(f"{target}: pass --provenance DIR or --repo URL --trust ROOT to verify a root")
        source = LocalEvidence(key, prov or target.parent)
    if target.is_dir():
        from pkgrepo.image.unpack import as_root

        with as_root(target) as root:
            problems = verify_rootfs(root, source, recipes_dir)
    elif _is_package(target):
        problems = verify_package(target, source, recipes_dir)
    else:
        raise BadInput(f"{target}: neither a package file (*{PACKAGE_SUFFIX}) nor a root directory")
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(2)
    click.echo(f"{target}: provenance verified")


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@ADVISORIES
@VEX
@click.option(
    "--fail-on",
    default=None,
    help="Exit 1 when a finding at or above this severity remains (low, medium, high, critical), "
    "or a package has no advisory data.",
)
@click.option(
    "--allow-unknown", is_flag=True, help="With --fail-on: a package the feed has no data for does not fail."
)
@PROVENANCE_DIR
@PROVENANCE_KEY
@JSON
def scan(target, advisories_dir, vex_dir, fail_on, allow_unknown, prov_dir, key_file, as_json) -> None:
    """Match an installed root, package or SBOM against advisories, honouring VEX and proven fixes."""
    from pkgrepo.attest.advisories import data_dir, load_feed
    from pkgrepo.attest.scan import check_fail_on, failing
    from pkgrepo.attest.scan import scan as run
    from pkgrepo.attest.vex import load_vex
    from pkgrepo.errors import PkgrepoError

    check_fail_on(fail_on)
    feed = load_feed(advisories_dir or data_dir("advisories"))
    statements = load_vex(vex_dir or data_dir("vex"))
    subject, proven = _with_proven(target, prov_dir, key_file)
    findings = run(subject, list(feed.advisories), statements, proven)
    covered = [c for c in subject.components if feed.covers(c)]
    unknown = sorted(c.name for c in subject.components if not feed.covers(c))
    if as_json:
        emit(
            {
                "target": str(target),
                "packages": len(subject.components),
                "feed": {
                    "name": feed.name,
                    "revision": feed.revision,
                    "date": feed.date,
                    "advisories": len(feed.advisories),
                    "covered": len(covered),
                },
                "no_data": unknown,
                "findings": [f.to_dict() for f in findings],
            }
        )
    else:
        click.echo(
            f"{target}: {len(subject.components)} packages; feed {feed.name} {feed.revision[:12]} "
            f"of {feed.date}, {len(feed.advisories)} advisories, covers {len(covered)} of "
            f"{len(subject.components)} packages"
        )
        for f in findings:
            fixed = f" (fixed in {f.fixed})" if f.fixed else ""
            why = f"  [{f.note}]" if f.note else ""
            click.echo(f"{f.advisory:18} {f.severity:8} {f.package} {f.version}{fixed}  {f.status}{why}")
        for name in unknown:
            click.echo(f"{name}: no data (the feed has no advisories for its upstream project)")
        open_ = [f for f in findings if not f.suppressed]
        if not open_ and covered:
            shown = "; no data for the rest" if unknown else ""
            click.echo(f"no open advisories for the {len(covered)} covered packages{shown}")
    bad = failing(findings, fail_on) if fail_on else []
    if bad:
        raise PkgrepoError(
            f"{len(bad)} finding(s) at or above {fail_on}: {bad[0].advisory} in {bad[0].package}"
        )
    if fail_on and unknown and not allow_unknown:
        raise PkgrepoError(
            f"{len(unknown)} package(s) with no advisory data ({', '.join(unknown[:3])}"
            f"{', ...' if len(unknown) > 3 else ''}); pass --allow-unknown to accept that"
        )


def _with_proven(target: Path, prov_dir: Path | None, key_file: Path | None):
    """(subject, proven fixes) of a root, image layout, package or SBOM: a root's files are
    checked while it is there (a layout's, unpacked), so a minimized prod root proves its fixes."""
    if target.is_dir():
        from pkgrepo.attest.inventory import rootfs_subject
        from pkgrepo.image.unpack import as_root

        with as_root(target) as root:
            subject = rootfs_subject(root)
            return subject, _proven(subject, prov_dir, key_file, root)
    subject = _subject(target)
    return subject, _proven(subject, prov_dir or (target.parent if _is_package(target) else None), key_file)


def _proven(
    subject, prov_dir: Path | None, key_file: Path | None, root: Path | None = None
) -> dict[str, frozenset[str]]:
    """The fixes each component's signed provenance in `prov_dir` proves (none without one);
    `root`: where the components are installed (see `verify.proven_fixes`)."""
    if prov_dir is None or not any(c.fixes for c in subject.components):
        return {}
    from pkgrepo.attest import dsse
    from pkgrepo.attest.evidence import PUBLIC_KEY
    from pkgrepo.attest.verify import LocalEvidence, proven_fixes

    if key_file is None and (prov_dir / PUBLIC_KEY).is_file():
        key_file = prov_dir / PUBLIC_KEY
    if key_file is not None:
        key = dsse.load_public_key(key_file)
    elif (dsse.default_key_dir() / f"{dsse.ROLE}.pem").is_file():
        key = dsse.signer().public_key
    else:
        return {}
    return proven_fixes(list(subject.components), LocalEvidence(key, prov_dir), root)


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@PROVENANCE_DIR
@PROVENANCE_KEY
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write here, not stdout.")
def vex(target, prov_dir, key_file, output) -> None:
    """OpenVEX `fixed` statements for an installed root, image layout, package or SBOM: one per
    vulnerability a package declares fixed whose patch its signed provenance holds."""
    from pkgrepo.attest.vex import fixed_document

    subject, proven = _with_proven(target, prov_dir, key_file)
    data = fixed_document(subject, proven)
    if output:
        output.write_bytes(data)
    else:
        click.echo(data.decode(), nl=False)


@click.command()
@click.argument("advisory_id")
@ADVISORIES
@click.option(
    "--packages",
    "packages_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Packages directory to search (default $PKGREPO_PACKAGES or packages).",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of image SBOMs (*.spdx.json, *.cdx.json) to search.",
)
@JSON
def affected(advisory_id, advisories_dir, packages_dir, images_dir, as_json) -> None:
    """The packages and images that contain a version an advisory affects."""
    from pkgrepo.attest.advisories import data_dir, find, load_advisories, package_component
    from pkgrepo.attest.sbom import read_sbom
    from pkgrepo.attest.scan import affected as holders
    from pkgrepo.package.archive import read_info

    adv = find(load_advisories(advisories_dir or data_dir("advisories")), advisory_id)
    packages_dir = packages_dir or default_packages()
    packages = []
    if packages_dir.is_dir():
        for p in sorted(packages_dir.glob(f"*{PACKAGE_SUFFIX}")):
            packages.append((p, package_component(read_info(p))))
    images = []
    if images_dir is not None:
        images = [
            (p, read_sbom(p))
            for p in sorted(images_dir.iterdir())
            if p.name.endswith((".spdx.json", ".cdx.json"))
        ]
    found = holders(adv, packages, images)
    if as_json:
        emit({"advisory": adv.id, "affected": [h.to_dict() for h in found]})
        return
    for h in found:
        click.echo(f"{h.kind:8} {h.package} {h.version}  {h.where}")
    if not found:
        click.echo(f"{adv.id}: nothing affected")


@click.command()
@click.argument("names", nargs=-1, required=True)
@RECIPES
@OUT
@CACHE
@click.option(
    "--repo",
    "repo_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Publish what was rebuilt into this repository directory.",
)
@KEYS
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of image roots to re-assemble when their closure changed, and of the --image-spec layouts.",
)
@click.option(
    "--image-spec",
    "specs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rebuild this spec's prod OCI image into IMAGES/<name> when its digest changed (repeatable).",
)
@click.option("--no-test", is_flag=True, help="Skip the recipes' test blocks.")
@JSON
def rollout(
    names, recipes_dir, out, cache_dir, repo_path, keys_dir, images_dir, specs, no_test, as_json
) -> None:
    """Patch to image: rebuild recipes and their reverse build dependencies, publish, re-assemble images."""
    from pkgrepo.builder.builder import Builder
    from pkgrepo.builder.plan import find_recipe
    from pkgrepo.progress import Progress
    from pkgrepo.recipe.load import load_requested
    from pkgrepo.repo.repository import Repository
    from pkgrepo.rollout import rollout as run
    from pkgrepo.source import SourceCache

    recipes = load_requested(recipes_dir, names)
    wanted = [find_recipe(recipes, n) for n in names]
    repo = Repository.at(repo_path, keys_dir) if repo_path else None
    site_inputs = None
    if repo is not None:  # the web catalogue follows the repository (docs/repository.md)
        from pkgrepo.attest.advisories import data_dir
        from pkgrepo.web.site import load_inputs

        site_inputs = load_inputs(data_dir("advisories"), data_dir("vex"))

    with Progress(as_json) as progress:
        builder = Builder(out, SourceCache(cache_dir, log=progress), report=progress)
        report = run(builder, recipes, wanted, repo, images_dir, test=not no_test, specs=list(specs))
    if site_inputs is not None:
        from pkgrepo.web.images import publish_records
        from pkgrepo.web.site import generate

        if specs and images_dir is not None:  # the rebuilt images' records, signed in
            report.published += publish_records(repo_path, keys_dir, images_dir)
        generate(repo_path, *site_inputs, vouched=report.vouched)
    if as_json:
        emit(report.to_dict())
        return
    click.echo(
        f"rebuilt: {', '.join(report.rebuilt) or 'nothing'}; cached: {', '.join(report.cached) or 'nothing'}"
    )
    for p in report.published:
        click.echo(f"published {p}")
    for i in report.images:
        state = "re-assembled" if i.changed else "unchanged"
        click.echo(f"image {i.path}: {state}, digest sha256:{i.digest}")
    click.echo(
        f"seconds: build {report.build_seconds:.1f}, publish {report.publish_seconds:.1f}, "
        f"assemble {report.assemble_seconds:.1f}"
    )


COMMANDS = [sbom, verify, scan, vex, affected, rollout]
