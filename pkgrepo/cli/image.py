"""`pkgrepo image build|audit|push`, `rootfs` and `dockerfile`: images from an image spec."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from pkgrepo.cli.options import JSON, TRUST, emit

PATH = click.Path(path_type=Path)
SPEC = click.argument("spec_path", metavar="SPEC", type=PATH)
PACKAGES = click.option(
    "--packages", type=PATH, default=None, help="Packages directory (wins over the spec's source)."
)
REPO = click.option(
    "--repo", "repo_url", default=None, help="URL of a signed repository (wins over the spec's source)."
)
PROFILE = click.option(
    "--profile",
    type=click.Choice(["prod", "dev"]),
    default="prod",
    show_default=True,
    help="prod: no shell, no package manager, non-root, minimized; dev: prod plus the dev extras.",
)


def _size(n: int) -> str:
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1_000_000:.2f} MB"


@click.group("image")
def image() -> None:
    """Build, audit and push OCI images from an image spec."""


@image.command("build")
@SPEC
@PROFILE
@click.option("--out", "layout", type=PATH, default=None, help="Write an OCI image layout here.")
@click.option("--rootfs", type=PATH, default=None, help="Also write the root filesystem as a directory.")
@click.option("--tar", type=PATH, default=None, help="Also write the root filesystem as a tarball.")
@click.option("--docker-archive", "archive", type=PATH, default=None, help="Also write a docker-archive tar.")
@click.option("--report", is_flag=True, help="List the files prod minimization removed and the bytes saved.")
@PACKAGES
@REPO
@TRUST
@JSON
def build(
    spec_path, profile, layout, rootfs, tar, archive, report, packages, repo_url, trust, as_json
) -> None:
    """Build the prod or dev image of SPEC (deterministic: same spec and packages, same digest)."""
    from pkgrepo.errors import BadInput
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.evidence import make_evidence
    from pkgrepo.image.outputs import check_outputs, write_outputs

    if not any((layout, rootfs, tar, archive)):
        raise BadInput("name an output: --out LAYOUT, --rootfs DIR, --tar FILE or --docker-archive FILE")
    check_outputs(layout, rootfs, tar, archive)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, profile, packages, repo_url, trust, Path(work))
        evidence = make_evidence(built, spec_path) if layout is not None else None
        write_outputs(built, layout, rootfs, tar, archive, evidence)
    if as_json:
        emit(built.to_dict())
        return
    click.echo(
        f"{built.spec.name} [{profile}] {built.image.digest} {_size(built.image.size)} compressed, "
        f"{len(built.image.layers)} layers, {len(built.assembled.packages)} packages"
    )
    for x in built.image.layers:
        click.echo(f"  {x.blob.digest[:19]}  {_size(len(x.blob.data)):>9}  {x.title}")
    if report:
        removed = built.assembled.report
        for r in removed.removed:
            click.echo(f"  removed /{r.path} ({r.package}, {r.size} bytes): {r.reason}")
        click.echo(f"minimization removed {len(removed.removed)} files, {removed.bytes_saved} bytes")


@image.command("audit")
@click.argument("target", metavar="LAYOUT|DIR", type=PATH)
@click.option(
    "--profile",
    type=click.Choice(["prod", "dev"]),
    default=None,
    help="Rules to apply (default: the layout's own profile, else prod).",
)
@JSON
def audit(target, profile, as_json) -> None:
    """Check an image against the hardened-image rules; exit 1 on any violation."""
    from pkgrepo.errors import PkgrepoError
    from pkgrepo.image.audit import audit as run

    report = run(target, profile)
    if as_json:
        emit(report.to_dict())
    else:
        for r in report.rules:
            click.echo(r.line())
    if not report.passed:
        failed = [r.rule for r in report.rules if r.status == "fail"]
        raise PkgrepoError(f"{target}: audit failed: {', '.join(failed)}")


@image.command("push")
@click.argument("layout", type=PATH)
@click.argument("ref")
@click.option("--insecure", is_flag=True, help="Plain HTTP / unverified TLS (a loopback test registry).")
def push(layout, ref, insecure) -> None:
    """Publish an OCI layout to a registry (REGISTRY/REPOSITORY[:TAG]) with skopeo."""
    from pkgrepo.image.push import push as run

    click.echo(f"pushed {ref}@{run(layout, ref, insecure)}")


@click.command("rootfs")
@SPEC
@PROFILE
@click.option(
    "--out", required=True, type=PATH, help="A directory, or FILE.tar for a tarball (`ADD rootfs.tar /`)."
)
@PACKAGES
@REPO
@TRUST
def rootfs(spec_path, profile, out, packages, repo_url, trust) -> None:
    """Write the minimal root filesystem of SPEC as a directory or a tarball."""
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.outputs import check_outputs, write_outputs

    is_tar = out.name.endswith(".tar")
    check_outputs(None, None if is_tar else out, out if is_tar else None, None)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, profile, packages, repo_url, trust, Path(work))
        write_outputs(built, None, None if is_tar else out, out if is_tar else None, None)
    click.echo(f"wrote {out}: {len(built.assembled.tree)} entries, {len(built.assembled.packages)} packages")


@click.command("dockerfile")
@SPEC
@click.option(
    "--app", default=".", show_default=True, help="The application's directory in the build context."
)
@click.option("--build", "build_cmd", default=None, help="Command the build stage runs in the app directory.")
@click.option("--out", type=PATH, default=None, help="Write the Dockerfile here (default: print it).")
@click.option(
    "--registry",
    default="localhost:5000/pkgrepo",
    show_default=True,
    help="Where the images are pushed: REGISTRY[/PATH]; the repository is this plus the spec's name.",
)
@PACKAGES
@REPO
@TRUST
def dockerfile(spec_path, app, build_cmd, out, registry, packages, repo_url, trust) -> None:
    """A multistage Dockerfile: build FROM the dev image, run FROM the prod image, both by digest."""
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.dockerfile import Stages, render
    from pkgrepo.image.outputs import check_file_target, replace_file

    if out is not None:
        check_file_target(out, "Dockerfile")
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, "dev", packages, repo_url, trust, Path(work))
    stages = Stages(f"{registry.rstrip('/')}/{built.spec.name}", built.image.digest, built.base_digest or "")
    text = render(built.spec, str(spec_path), stages, app, build_cmd)
    if out is None:
        click.echo(text, nl=False)
    else:
        replace_file(out, text.encode(), "Dockerfile")
        click.echo(f"wrote {out}: build FROM {stages.dev_digest[:19]}, run FROM {stages.prod_digest[:19]}")


COMMANDS = [image, rootfs, dockerfile]
