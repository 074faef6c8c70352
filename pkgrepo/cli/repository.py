"""`pkgrepo repo init|refresh|rotate|web`, `publish`, `serve`, `search` and `info`: the signed repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pkgrepo.cli.options import JSON, KEYS, REPO_URL, TRUST, emit
from pkgrepo.repo.roles import TOP_ROLES

if TYPE_CHECKING:
    from pkgrepo.repo.client import RepoClient

EXPIRY = click.option("--expiry", multiple=True, help="ROLE=N[s|m|h|d], e.g. timestamp=1d (repeatable).")
EXPORT = click.option(
    "--export-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the trusted root metadata clients start from here.",
)
ADVISORIES = click.option(
    "--advisories",
    "advisories_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of OSV advisories for the site (default repo-data/advisories).",
)
VEX = click.option(
    "--vex",
    "vex_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of OpenVEX documents for the site (default repo-data/vex).",
)
INFO_FIELDS = (
    "name",
    "version",
    "release",
    "description",
    "license",
    "homepage",
    "depends",
    "provides",
    "installed_size",
    "size",
    "sha256",
    "path",
)


@click.group()
def repo() -> None:
    """Create and maintain a signed repository."""


@repo.command("init")
@click.argument("path", type=click.Path(path_type=Path))
@KEYS
@EXPIRY
@EXPORT
def repo_init(path, keys_dir, expiry, export_root) -> None:
    """Create an empty repository with new Ed25519 keys for every role."""
    from pkgrepo.repo.repository import Repository, parse_expiry

    r = Repository.at(path, keys_dir)
    r.init(parse_expiry(expiry))
    if export_root:
        r.export_root(export_root)
    click.echo(f"created {path}; keys in {r.keys.directory}; clients trust {path / 'metadata/1.root.json'}")


@repo.command("refresh")
@click.argument("path", type=click.Path(path_type=Path))
@KEYS
@EXPIRY
@click.option("--targets", "targets_too", is_flag=True, help="Re-sign targets as well.")
def repo_refresh(path, keys_dir, expiry, targets_too) -> None:
    """Re-sign snapshot and timestamp (and targets) before they expire."""
    from pkgrepo.repo.repository import Repository, parse_expiry

    version = Repository.at(path, keys_dir).refresh(parse_expiry(expiry), targets_too)
    click.echo(f"refreshed {path}: timestamp version {version}")


@repo.command("rotate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--role", required=True, type=click.Choice(TOP_ROLES))
@KEYS
@EXPORT
def repo_rotate(path, role, keys_dir, export_root) -> None:
    """Replace a role's key; existing clients follow through the new root version."""
    from pkgrepo.repo.repository import Repository

    r = Repository.at(path, keys_dir)
    version = r.rotate(role)
    if export_root:
        r.export_root(export_root)
    click.echo(f"rotated the {role} key of {path}: root version {version}")


@repo.command("web")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Sign the OCI layouts in DIR into the repository as image records (images/NAME.json) first.",
)
@KEYS
@ADVISORIES
@VEX
@JSON
def repo_web(path, images_dir, keys_dir, advisories_dir, vex_dir, as_json) -> None:
    """Regenerate the repository's static web catalogue (PATH/web/) from its signed metadata."""
    inputs = _site_inputs(advisories_dir, vex_dir)
    added = []
    if images_dir is not None:
        from pkgrepo.web.images import publish_records

        added = publish_records(path, keys_dir, images_dir)
    site = _web(path, inputs)
    if as_json:
        emit(
            {
                "site": str(site.path),
                "digest": site.digest,
                "pages": site.pages,
                "pages_reused": site.reused,
                "images_added": added,
            }
        )
        return
    for a in added:
        click.echo(f"published {a}")
    click.echo(
        f"wrote {site.path}/index.html: {site.packages} packages, {site.pages} pages"
        f" ({site.reused} unchanged, taken from the previous site)"
    )


def _site_inputs(advisories_dir: Path | None, vex_dir: Path | None):
    """The advisories and VEX the site shows, loaded (and refused) before anything is written."""
    from pkgrepo.attest.advisories import data_dir
    from pkgrepo.web.site import load_inputs

    return load_inputs(advisories_dir or data_dir("advisories"), vex_dir or data_dir("vex"))


def _web(path: Path, inputs):
    from pkgrepo.web.site import generate

    return generate(path, *inputs)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--repo", "repo_path", type=click.Path(path_type=Path), required=True, help="Repository directory."
)
@KEYS
@EXPIRY
@click.option("--force", is_flag=True, help="Replace a published name-version-release with different bytes.")
@click.option("--no-web", is_flag=True, help="Do not regenerate the web catalogue (REPO/web/).")
@ADVISORIES
@VEX
@JSON
def publish(files, repo_path, keys_dir, expiry, force, no_web, advisories_dir, vex_dir, as_json) -> None:
    """Publish package files into a repository (atomic; concurrent publishes are serialised),
    then regenerate its web catalogue."""
    from pkgrepo.attest.evidence import evidence_files
    from pkgrepo.repo.repository import Repository, parse_expiry

    repo = Repository.at(repo_path, keys_dir)
    if no_web:
        report = repo.publish(list(files), force, parse_expiry(expiry), evidence_files)
        site = None
    else:
        from pkgrepo.web.ahead import Ahead
        from pkgrepo.web.site import generate

        inputs = _site_inputs(advisories_dir, vex_dir)
        with Ahead(repo_path, *inputs) as ahead:  # the site is rendered while the publish signs
            report = repo.publish(list(files), force, parse_expiry(expiry), evidence_files, ahead.start)
            site = generate(repo_path, *inputs, vouched=report.vouched, ahead=ahead)
    if as_json:
        emit(
            {
                "added": report.added,
                "unchanged": report.unchanged,
                "timestamp_version": report.version,
                "site": str(site.path) if site else None,
            }
        )
        return
    for a in report.added:
        click.echo(f"published {a}")
    for u in report.unchanged:
        click.echo(f"unchanged {u}")
    if site:
        click.echo(f"site {site.path}/index.html")


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option(
    "--idle-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds before an idle or stalled connection is closed.",
)
@click.option(
    "--max-connections",
    default=4096,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Connections held open at once, idle ones included; past it the longest idle one is closed.",
)
@click.option(
    "--workers",
    default=64,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Requests answered at once; an idle connection takes none.",
)
def serve(path, host, port, idle_timeout, max_connections, workers) -> None:
    """Serve a repository (any file under PATH) over HTTP until interrupted."""
    from pkgrepo.repo.serve import serve as serve_forever

    serve_forever(
        path,
        host,
        port,
        ready=lambda url: click.echo(f"serving {path} at {url}", err=True),
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        workers=workers,
        note=lambda message: click.echo(f"pkgrepo serve: {message}", err=True),
    )


@click.command()
@click.argument("pattern", default="")
@REPO_URL
@TRUST
@JSON
def search(pattern, repo_url, trust, as_json) -> None:
    """List packages of a signed repository whose name or description contains PATTERN."""
    from pkgrepo.repo.index import matching

    found = matching(_opened(repo_url, trust).entries(), pattern)
    if as_json:
        emit({"packages": [e.to_dict() for e in found]})
        return
    for e in found:
        click.echo(f"{e.name} {e.info.version}-r{e.info.release}  {e.info.description}")


@click.command()
@click.argument("name")
@REPO_URL
@TRUST
@JSON
def info(name, repo_url, trust, as_json) -> None:
    """Show a package of a signed repository, from its verified index."""
    from pkgrepo.repo.index import named

    found = named(_opened(repo_url, trust).entries(), name)
    if as_json:
        emit({"packages": [e.to_dict() for e in found]})
        return
    for e in found:
        data = e.to_dict()
        for key in INFO_FIELDS:
            value = data.get(key)
            click.echo(f"{key}: {' '.join(value) if isinstance(value, list) else value}")


def _opened(repo_url: str | None, trust: Path | None) -> RepoClient:
    """--repo URL|NAME, or the repository of /etc/pkgrepo/repositories (inside a dev image)."""
    from pkgrepo.errors import BadInput
    from pkgrepo.repo.config import config_dir, configured
    from pkgrepo.resolve.sources import open_source

    if repo_url is None and not configured():
        raise BadInput(f"--repo URL is required (no {config_dir() / 'repositories'} here)")
    return open_source(repository=repo_url, trust=trust).verifying_client()


COMMANDS = [repo, publish, serve, search, info]
