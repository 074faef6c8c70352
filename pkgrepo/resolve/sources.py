"""Where packages come from: the one opener every command goes through.

`open_source` turns what a command line names — `--packages DIR`, `--repo URL|NAME --trust
ROOT`, or an index spec (`native:DIR`, `native:URL`, `debian:PATH[,PATH...]`) — into a
`PackageSource`: an index for the minimizer, a way to get a chosen package's bytes (a local
path; from a repository only after TUF verified them), one label (the index spec that names it
again, shown by `resolve` and recorded in a root's installed-package database) and, for a
repository, its verifying client. No other module builds a repository client for a command
(`tests/test_architecture.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pkgrepo.errors import BadInput
from pkgrepo.resolve.indexes import RepositoryIndex, Warn
from pkgrepo.resolve.model import Index, IndexKind, Package

if TYPE_CHECKING:
    from pkgrepo.repo.client import RepoClient
    from pkgrepo.repo.index import IndexEntry


class PackageSource:
    """An index and the bytes of its packages. A repository's index is read on first use, so a
    command that needs only the verified client (search, provenance) reads no more than that."""

    def __init__(
        self,
        kind: IndexKind,
        label: str,
        index: Callable[[], Index],
        fetch: Callable[[Package], Path],
        client: RepoClient | None = None,
    ):
        self.kind = kind
        self.label = label
        self._index = index
        self.fetch = fetch
        self.client = client
        # where clients reach the repository (an image's source label, a dev image's configuration)
        self.url = client.url if client is not None else None

    @functools.cached_property
    def index(self) -> Index:
        return self._index()

    def relabelled(self, label: str) -> PackageSource:
        """The same packages, recorded as `label` and with no URL for clients: a repository read
        through a transient URL (rollout's loopback server) is named by where it lives, so that
        what a root records is the same from one run to the next."""
        source = PackageSource(self.kind, label, lambda: self.index, self.fetch, self.client)
        source.url = None
        return source

    def verifying_client(self) -> RepoClient:
        """The verifying client of a repository source."""
        if self.client is None:
            raise BadInput(f"{self.label}: not a repository; pass --repo URL --trust ROOT_JSON")
        return self.client


def _newest(entries: list[IndexEntry]) -> list[IndexEntry]:
    from pkgrepo.resolve.native import to_package
    from pkgrepo.resolve.version import sort_key

    newest: dict[str, IndexEntry] = {}
    for e in sorted(entries, key=lambda e: sort_key(to_package(e.info, e.path).version)):
        newest[e.info.name] = e
    return sorted(newest.values(), key=lambda e: e.path)


def _repository(url: str, trust: Path | None, every_version: bool, cache: Path | None) -> PackageSource:
    from pkgrepo.paths import default_cache
    from pkgrepo.repo.client import RepoClient

    client = RepoClient(url, cache or default_cache(), trust)
    label = f"native:{client.url}"

    def index() -> Index:
        entries = client.entries()
        return RepositoryIndex(entries if every_version else _newest(entries), label)

    return PackageSource("native", label, index, lambda p: client.fetch(p.location), client)


def _directory(packages: Path, every_version: bool) -> PackageSource:
    from pkgrepo.resolve.native import NativeIndex

    index = NativeIndex(packages, newest_only=not every_version)
    return PackageSource("native", index.label, lambda: index, lambda p: Path(p.location))


def _debian(paths: str, warn: Warn) -> PackageSource:
    from pkgrepo.paths import default_cache
    from pkgrepo.resolve.debian import DebianIndex

    index = DebianIndex([Path(p) for p in paths.split(",")], default_cache() / "index")
    if index.skipped:
        warn(f"{index.skipped} stanzas skipped, first: {index.first_skipped}")

    def fetch(p: Package) -> Path:
        raise BadInput(f"{p.name}: {index.label} lists packages but holds no package files to install")

    return PackageSource("debian", index.label, lambda: index, fetch)


def open_source(
    spec: str | None = None,
    *,
    packages: Path | None = None,
    repository: str | None = None,
    trust: Path | None = None,
    every_version: bool = False,
    cache: Path | None = None,
    warn: Warn = lambda _m: None,
) -> PackageSource:
    """An index spec, or exactly one of a packages directory and a repository URL (with its
    trusted root); with none of them, or `--repo NAME`, the repository configured in
    /etc/pkgrepo (pkgrepo.repo.config).

    Unless `every_version`, only the newest version of each package is offered, as apt and apk
    offer their candidate: a repository keeps the releases it replaced, and the minimizer, which
    counts bytes, would otherwise choose an older, smaller and unpatched release over the one
    that replaced it. `resolve` and `why` see every version, so that `NAME=VERSION` can pin one.
    A repository client keeps its trusted state under `cache` (default: the user's cache)."""
    if spec is not None:
        kind, _, where = spec.partition(":")
        if kind == "native" and where.startswith(("http://", "https://")):
            return _repository(where, trust, every_version, cache)
        if kind == "native" and where:
            return _directory(Path(where), every_version)
        if kind == "debian" and where:
            return _debian(where, warn)
        raise BadInput(f"--index {spec!r}: expected native:DIR, native:URL or debian:PATH[,PATH...]")
    if packages is None:
        from pkgrepo.repo.config import repository as configured

        repository, trust = configured(repository, trust)
    if packages is not None and repository is None:
        return _directory(packages, every_version)
    if repository is not None and packages is None:
        return _repository(repository, trust, every_version, cache)
    raise BadInput("pass exactly one of --packages DIR or --repo URL")
