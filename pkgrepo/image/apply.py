"""Install, upgrade and remove on a root filesystem (pypa/installer's shape).

`apply(result, source, root)` is the one install path: the minimizer's closure,
the package bytes from a `PackageSource` at the edge (a packages directory or
the verifying repository client, `pkgrepo.resolve.sources`), every package
checked before anything is written, and every write through the rootfs
destination (`pkgrepo.package.rootfs.Rootfs`). Everything outside the builder
that puts packages into a root comes here: `install`, `upgrade` and `remove`
are the commands' policies over it, `populate` fills a new root for an image
build and for rollout (`tests/test_architecture.py` holds every other module
off the `Rootfs` primitive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.space import check_checked, check_declared
from pkgrepo.package.extract import CheckedPackage, check_package
from pkgrepo.package.rootfs import InstalledPackage, Rootfs
from pkgrepo.resolve.deps import meets, parse_dep, parse_provide
from pkgrepo.resolve.indexes import parse_root
from pkgrepo.resolve.minimize import Result, minimize
from pkgrepo.resolve.sources import PackageSource

Wait = Callable[[str], None]


def check_as(path: Path, name: str, version: str) -> CheckedPackage:
    """Check a package file and that it is the package the index promised."""
    c = check_package(path)
    if (c.info.name, c.info.full_version) != (name, version):
        raise BadInput(
            f"{c.path}: contains {c.info.name} {c.info.full_version}, the index says "
            f"{name} {version}; refusing"
        )
    return c


def apply(
    result: Result, source: PackageSource, root: Rootfs, requested: Iterable[str], overwrite: bool = False
) -> list[CheckedPackage]:
    """Install what the open root lacks of `result`; every package is checked, and the room for
    all of them on the root's file system, before anything is written."""
    db = root.installed()
    new = [p for p in result.packages if not (p.name in db and db[p.name].version == p.version)]
    check_declared(root.path, sum(p.installed_size for p in new))
    checked = [check_as(source.fetch(p), p.name, p.version) for p in new]
    check_checked(root.path, checked)
    root.install(checked, requested, source.label, overwrite)
    return checked


@dataclass(frozen=True)
class Populated:
    """A new root: the packages written into it, and its database afterwards."""

    checked: list[CheckedPackage]
    installed: dict[str, InstalledPackage]


def populate(path: Path, result: Result, source: PackageSource, requested: Iterable[str]) -> Populated:
    """A new root at `path` (created) holding `result`, for an image build or a rollout."""
    with Rootfs.open(path, create=True) as root:
        checked = apply(result, source, root, requested)
        return Populated(checked, root.installed())


def requested_names(db: dict[str, InstalledPackage], where: Path) -> list[str]:
    """The names a root's packages were installed for (upgrades and rollout resolve them again)."""
    names = sorted(n for n, rec in db.items() if rec.requested)
    if not names:
        raise BadInput(f"{where}: nothing installed by request; install something first")
    return names


def closure(source: PackageSource, names: list[str], time_limit: float = 30.0) -> Result:
    """The smallest closure of typed roots (`NAME`, `NAME>=1.2`, `so:...`) in `source`."""
    return minimize(source.index, [parse_root(n) for n in names], time_limit)


def install(
    source: PackageSource,
    names: list[str],
    path: Path,
    time_limit: float,
    overwrite: bool = False,
    on_wait: Wait | None = None,
) -> list[CheckedPackage]:
    """The smallest closure of `names` into the root at `path` (created if absent)."""
    result = closure(source, names, time_limit)
    with Rootfs.open(path, create=True, on_wait=on_wait) as root:
        return apply(result, source, root, names, overwrite)


def upgrade(
    open_source: Callable[[], PackageSource],
    path: Path,
    time_limit: float,
    overwrite: bool = False,
    on_wait: Wait | None = None,
) -> list[CheckedPackage]:
    """The newest closure of what was asked for; the source is opened only once the root is locked."""
    with Rootfs.open(path, on_wait=on_wait) as root:
        names = requested_names(root.installed(), path)
        source = open_source()
        return apply(closure(source, names, time_limit), source, root, names, overwrite)


def needed(db: dict[str, InstalledPackage], names: list[str]) -> str | None:
    """Why removing `names` would break a package staying behind, if it would."""
    for name, rec in sorted(db.items()):
        if name in names:
            continue
        for d in rec.depends:
            dep = parse_dep(d)
            providers = [n for n, r in db.items() if meets(dep, n, r.version, map(parse_provide, r.provides))]
            if providers and all(p in names for p in providers):
                return f"{providers[0]}: needed by {name} ({d}); remove {name} too, or pass --force"
    return None


def remove(names: list[str], path: Path, force: bool = False, on_wait: Wait | None = None) -> list[str]:
    """Remove `names`; refused, unless `force`, when a package staying behind needs what only they provide."""
    with Rootfs.open(path, on_wait=on_wait) as root:
        why = None if force else needed(root.installed(), names)
        if why:
            raise BadInput(why)
        return root.remove(names)
