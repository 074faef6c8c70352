"""Options shared by several commands, and the one way to print JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from pkgrepo.paths import default_packages
from pkgrepo.resolve.profiles import PROFILES

JSON_VERSION = 1  # of every document `--json` prints; bumped when a document changes incompatibly

RECIPES = click.option(
    "--recipes",
    "recipes_dir",
    type=click.Path(path_type=Path),
    show_default=True,
    default=lambda: os.environ.get("PKGREPO_RECIPES", "recipes"),
    help="Directory of recipes (*.yaml).",
)
OUT = click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    show_default=True,
    default=lambda: str(default_packages()),
    help="Packages directory.",
)
CACHE = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Source cache (default $PKGREPO_CACHE or ~/.cache/pkgrepo).",
)
# the signed provenance that proves a package's declared fixes (scan, vex)
PROVENANCE_DIR = click.option(
    "--provenance",
    "prov_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of the packages' signed provenance (default: beside a package file); a declared "
    "fix counts only when it holds the patch.",
)
PROVENANCE_KEY = click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Provenance public key (default: provenance.pub in the provenance directory, else this machine's).",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
INDEX = click.option(
    "--index",
    "index_spec",
    show_default=True,
    default=lambda: f"native:{default_packages()}",
    help="native:DIR (a packages directory), native:URL (a signed repository) or debian:PATH[,PATH].",
)
PROFILE = click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="prod",
    show_default=True,
    help="prod: the roots only; dev: plus the dev extras (repo-data/dev-extras.yaml).",
)
EXTRA = click.option("--dev-extra", "extras", multiple=True, help="Replace the dev extras (repeatable).")
LIMIT = click.option(
    "--time-limit",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds for the solver; past it the best set found is returned, marked not optimal.",
)
REPO_URL = click.option(
    "--repo",
    "repo_url",
    help="URL of a signed repository, or the name of one in "
    "/etc/pkgrepo/repositories (default there: the first).",
)
TRUST = click.option(
    "--trust",
    type=click.Path(path_type=Path),
    default=None,
    help="Trusted root metadata (root.json) for the first use of a repository.",
)
KEYS = click.option(
    "--keys",
    "keys_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of private keys (default: $PKGREPO_KEYS or ~/.config/pkgrepo/keys/REPO-HASH).",
)


def emit(data: dict[str, Any]) -> None:
    """One JSON document on stdout, with its format version."""
    assert "version" not in data, "a document's own fields never shadow its format version"
    click.echo(json.dumps({"version": JSON_VERSION, **data}, indent=2, sort_keys=True))


def warn(message: str) -> None:
    click.echo(f"pkgrepo: warning: {message}", err=True)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
