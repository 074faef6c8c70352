"""Open the index a command names, and read the roots a user typed.

The resolver owns its adapters (resolvelib's provider split): `native:DIR` (a
packages directory), `native:URL` (a signed repository, read through the
verifying client) and `debian:PATH[,PATH...]` (Debian `Packages` files) all
become an `Index`; the repository room knows nothing of the resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.repo.index import IndexEntry
from pkgrepo.resolve.deps import Dep, parse_dep
from pkgrepo.resolve.model import Index, IndexKind, PackageList

Warn = Callable[[str], None]


class RepositoryIndex(PackageList):
    """Adapter: the verified index of a signed repository; a package's location is its target path."""

    def __init__(self, entries: list[IndexEntry], label: str):
        from pkgrepo.resolve.native import to_package

        super().__init__([to_package(e.info, e.path) for e in entries], label)


def open_index(spec: str, trust: Path | None = None, warn: Warn = lambda _m: None) -> tuple[IndexKind, Index]:
    """`native:DIR`, `native:URL` or `debian:PATH[,PATH...]` -> (kind, index)."""
    kind, _, where = spec.partition(":")
    if kind == "native" and where.startswith(("http://", "https://")):
        from pkgrepo.paths import default_cache
        from pkgrepo.repo.client import RepoClient

        client = RepoClient(where, default_cache(), trust)
        return "native", RepositoryIndex(client.entries(), f"native:{client.url}")
    if kind == "native" and where:
        from pkgrepo.resolve.native import NativeIndex

        return "native", NativeIndex(Path(where))
    if kind == "debian" and where:
        from pkgrepo.paths import default_cache
        from pkgrepo.resolve.debian import DebianIndex

        index = DebianIndex([Path(p) for p in where.split(",")], default_cache() / "index")
        if index.skipped:
            warn(f"{index.skipped} stanzas skipped, first: {index.first_skipped}")
        return "debian", index
    raise BadInput(f"--index {spec!r}: expected native:DIR, native:URL or debian:PATH[,PATH...]")


def parse_root(text: str) -> Dep | tuple[Dep, ...]:
    """A typed root: `NAME`, `NAME>=1.2`, `so:libz.so.1`, or Debian's `NAME (>= 1.2)` / `a | b`."""
    try:
        if "(" in text:
            from pkgrepo.resolve.debian import parse_alternative

            return parse_alternative(text)
        return parse_dep(text)
    except BadInput as e:
        raise BadInput(f"root {e}") from None
