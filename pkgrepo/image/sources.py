"""Where packages come from: a packages directory, or a signed repository through the verifying client.

A `PackageSource` is an index for the minimizer plus a way to get a chosen
package's bytes (a local path; from a repository, only after TUF verified
them) and a label recorded in the installed-package database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pkgrepo.errors import BadInput
from pkgrepo.resolve.model import Index, Package

if TYPE_CHECKING:
    from pkgrepo.repo.index import IndexEntry


@dataclass(frozen=True)
class PackageSource:
    index: Index
    fetch: Callable[[Package], Path]
    label: str  # recorded in the installed-package database
    url: str | None = None  # a repository's URL


def open_packages(packages: Path | None, repository: str | None, trust: Path | None = None) -> PackageSource:
    """Exactly one of a packages directory or a repository URL (with its trusted root); with
    neither, or `--repo NAME`, the repository configured in /etc/pkgrepo (pkgrepo.repo.config).

    Only the newest version of each package is offered, as apt and apk offer their candidate:
    a repository keeps the releases it replaced, and the minimizer, which counts bytes, would
    otherwise choose an older, smaller and unpatched release over the one that replaced it."""
    if packages is None:
        from pkgrepo.repo.config import repository as configured_repository

        repository, trust = configured_repository(repository, trust)
    if (packages is None) == (repository is None):
        raise BadInput("pass exactly one of --packages DIR or --repo URL")
    if packages is not None:
        from pkgrepo.resolve.native import NativeIndex

        index = NativeIndex(packages, newest_only=True)
        return PackageSource(index, lambda p: Path(p.location), f"native:{packages}")
    from pkgrepo.paths import default_cache
    from pkgrepo.repo.client import RepoClient
    from pkgrepo.resolve.indexes import RepositoryIndex
    from pkgrepo.resolve.native import to_package
    from pkgrepo.resolve.version import sort_key

    client = RepoClient(repository, default_cache(), trust)
    newest: dict[str, IndexEntry] = {}
    for e in sorted(client.entries(), key=lambda e: sort_key(to_package(e.info, e.path).version)):
        newest[e.info.name] = e
    index = RepositoryIndex(sorted(newest.values(), key=lambda e: e.path), f"repo:{client.url}")
    return PackageSource(index, lambda p: client.fetch(p.location), client.url, client.url)
