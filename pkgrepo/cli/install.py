"""`pkgrepo install`, `upgrade` and `remove`: a root filesystem from a packages directory or a repository."""

from __future__ import annotations

from pathlib import Path

import click

from pkgrepo.cli.options import JSON, LIMIT, REPO_URL, TRUST, emit

ROOT = click.option(
    "--root",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="Root filesystem (default / where /etc/pkgrepo/repositories exists, as in a dev image).",
)
OVERWRITE = click.option(
    "--overwrite", is_flag=True, help="Replace files in the root that no installed package owns."
)


def _waiting(message: str) -> None:
    click.echo(message, err=True)


def _report(checked, root: Path, as_json: bool, verb: str) -> None:
    if as_json:
        emit(
            {
                "root": str(root),
                verb: [
                    {
                        "name": c.info.name,
                        "version": c.info.full_version,
                        "installed_size": c.info.installed_size,
                    }
                    for c in checked
                ],
            }
        )
        return
    for c in checked:
        click.echo(f"{verb} {c.info.name} {c.info.full_version}")
    if not checked:
        click.echo("nothing to do")


@click.command()
@click.argument("names", nargs=-1, required=True)
@ROOT
@click.option(
    "--packages",
    "packages",
    type=click.Path(path_type=Path),
    default=None,
    help="Install from a directory of package files.",
)
@REPO_URL
@TRUST
@LIMIT
@OVERWRITE
@JSON
def install(names, root, packages, repo_url, trust, time_limit, overwrite, as_json) -> None:
    """Install packages and the smallest closure of their dependencies into a root.

    From a packages directory (--packages) or a signed repository (--repo): every
    package is verified and checked before anything is written to the root."""
    from pkgrepo.image import apply
    from pkgrepo.repo.config import default_root
    from pkgrepo.resolve.sources import open_source

    root = default_root(root)
    source = open_source(packages=packages, repository=repo_url, trust=trust)
    checked = apply.install(source, list(names), root, time_limit, overwrite, _waiting)
    _report(checked, root, as_json, "installed")


@click.command()
@ROOT
@REPO_URL
@TRUST
@LIMIT
@OVERWRITE
@JSON
def upgrade(root, repo_url, trust, time_limit, overwrite, as_json) -> None:
    """Upgrade a root to the newest closure of the packages it asked for."""
    from pkgrepo.image import apply
    from pkgrepo.repo.config import default_root
    from pkgrepo.resolve.sources import open_source

    root = default_root(root)
    checked = apply.upgrade(
        lambda: open_source(repository=repo_url, trust=trust), root, time_limit, overwrite, _waiting
    )
    _report(checked, root, as_json, "upgraded")


@click.command()
@click.argument("names", nargs=-1, required=True)
@ROOT
@click.option("--force", is_flag=True, help="Remove even when other installed packages need it.")
def remove(names, root, force) -> None:
    """Remove installed packages from a root."""
    from pkgrepo.image import apply
    from pkgrepo.repo.config import default_root

    for name in apply.remove(list(names), default_root(root), force, _waiting):
        click.echo(f"removed {name}")


COMMANDS = [install, upgrade, remove]
