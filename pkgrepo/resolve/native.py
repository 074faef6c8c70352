"""Adapter: the project's own packages (a packages directory) as an index."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.package.archive import read_info
from pkgrepo.package.meta import PACKAGE_SUFFIX, PackageInfo
from pkgrepo.resolve.deps import parse_dep, parse_provide
from pkgrepo.resolve.minimize import minimize
from pkgrepo.resolve.model import Package, PackageList
from pkgrepo.resolve.version import sort_key


def to_package(info: PackageInfo, location: str) -> Package:
    """A package's metadata as the minimizer sees it; `location` is where its bytes are."""
    return Package(
        key=f"{info.name}={info.full_version}",
        name=info.name,
        version=info.full_version,
        installed_size=info.installed_size,
        depends=tuple((parse_dep(d),) for d in info.depends),
        provides=tuple(parse_provide(p) for p in info.provides),
        location=location,
    )


class NativeIndex(PackageList):
    """Every package file of a directory; with `newest_only`, only the newest version of each name
    (what a build sees: a rebuilt release replaces the old one rather than competing with it).

    `packages`, when given, are the directory's packages as the caller already read them (the
    builder keeps its own view current instead of reading every header again)."""

    def __init__(self, directory: Path, newest_only: bool = False, packages: list[Package] | None = None):
        if not directory.is_dir():
            raise BadInput(
                f"{directory}: packages directory does not exist; build first or pass another directory"
            )
        if packages is None:
            packages = [
                to_package(read_info(p), str(p))
                for p in sorted(directory.glob(f"*{PACKAGE_SUFFIX}"))
                if p.is_file()
            ]
        packages = _unambiguous(packages)
        if newest_only:
            newest: dict[str, Package] = {}
            for p in sorted(packages, key=lambda p: sort_key(p.version)):
                newest[p.name] = p
            packages = sorted(newest.values(), key=lambda p: p.key)
        super().__init__(packages, f"native:{directory}")


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _unambiguous(packages: list[Package]) -> list[Package]:
    """One package per name and version: identical copies collapse to the first file; two files
    claiming one name-version-release with different bytes are refused, naming both."""
    first: dict[str, Package] = {}
    for p in packages:
        other = first.setdefault(p.key, p)
        if other is not p and _digest(other.location) != _digest(p.location):
            raise BadInput(
                f"{other.location} and {p.location} both claim {p.name} {p.version} with different "
                "bytes; remove the wrong one"
            )
    return list(first.values())


def closure(directory: Path, roots: list[str], packages: list[Package] | None = None) -> list[Package]:
    """The smallest closure of `roots` among the newest packages of a directory; location is each file."""
    index = NativeIndex(directory, newest_only=True, packages=packages)
    return minimize(index, [parse_dep(r) for r in roots]).packages
