"""The signed repository's index adapter, and the roots a user typed.

The resolver owns its adapters (resolvelib's provider split): a packages
directory (`native.NativeIndex`), a signed repository's verified index
(`RepositoryIndex`) and Debian `Packages` files (`debian.DebianIndex`) all
become an `Index`; the repository room knows nothing of the resolver.
`pkgrepo.resolve.sources.open_source` opens the one a command names.
"""

from __future__ import annotations

from collections.abc import Callable

from pkgrepo.errors import BadInput
from pkgrepo.repo.index import IndexEntry
from pkgrepo.resolve.deps import Dep, parse_dep
from pkgrepo.resolve.model import PackageList

Warn = Callable[[str], None]


class RepositoryIndex(PackageList):
    """Adapter: the verified index of a signed repository; a package's location is its target path."""

    def __init__(self, entries: list[IndexEntry], label: str):
        from pkgrepo.resolve.native import to_package

        super().__init__([to_package(e.info, e.path) for e in entries], label)


def parse_root(text: str) -> Dep | tuple[Dep, ...]:
    """A typed root: `NAME`, `NAME>=1.2`, `so:libz.so.1`, or Debian's `NAME (>= 1.2)` / `a | b`."""
    try:
        if "(" in text:
            from pkgrepo.resolve.debian import parse_alternative

            return parse_alternative(text)
        return parse_dep(text)
    except BadInput as e:
        raise BadInput(f"root {e}") from None
