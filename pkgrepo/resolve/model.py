"""What the minimizer knows of a package, whatever index it came from.

The minimizer sees only this model and the `Index` protocol (the shape of
resolvelib's provider): an adapter turns a native packages directory or a
Debian `Packages` file into it. Dependencies are in conjunctive normal form:
a list of clauses, each a list of alternatives (`a | b`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pkgrepo.resolve.deps import Dep, meets

# The kinds of index `--index` names: pkgrepo's own (a directory or a repository) and Debian's.
IndexKind = Literal["native", "debian"]


@dataclass(frozen=True, eq=False)
class Package:
    key: str  # unique within an index: "name=version"
    name: str
    version: str
    installed_size: int  # bytes
    depends: tuple[tuple[Dep, ...], ...] = ()
    conflicts: tuple[Dep, ...] = ()  # Conflicts and Breaks alike: never installed together
    provides: tuple[tuple[str, str | None], ...] = ()
    location: str = ""  # where its bytes are: a file path, a repository target path or a URL ("" unknown)

    def satisfies(self, dep: Dep) -> bool:
        """Does this package meet `dep`, by its own name or by one of its provides?"""
        return meets(dep, self.name, self.version, self.provides)


def clause_text(clause: Iterable[Dep]) -> str:
    return " | ".join(str(d) for d in clause)


class Index(Protocol):
    """An adapter over one package index."""

    label: str

    def providers(self, name: str) -> list[Package]:
        """Every package whose name, or one of whose provides, is `name` (any version)."""
        ...

    def names(self) -> Iterable[str]:
        """All package names, for suggestions."""
        ...


class PackageList:
    """An index over a fixed list of packages: each one found by its name and by every provide."""

    def __init__(self, packages: Iterable[Package], label: str):
        self.label = label
        self._by_name: dict[str, list[Package]] = {}
        for pkg in packages:
            for name in {pkg.name, *(n for n, _v in pkg.provides)}:
                self._by_name.setdefault(name, []).append(pkg)

    def providers(self, name: str) -> list[Package]:
        return list(self._by_name.get(name, []))

    def names(self) -> list[str]:
        return sorted({p.name for ps in self._by_name.values() for p in ps})


@dataclass
class Candidates:
    """Memoised `dep -> packages that satisfy it` over one index."""

    index: Index
    _cache: dict[Dep, list[Package]] = field(default_factory=dict)

    def __call__(self, dep: Dep) -> list[Package]:
        found = self._cache.get(dep)
        if found is None:
            found = [p for p in self.index.providers(dep.name) if p.satisfies(dep)]
            found.sort(key=lambda p: (p.name, p.key))
            self._cache[dep] = found
        return found
