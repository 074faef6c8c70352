"""Adapter: the project's own packages (a packages directory) as an index."""

from __future__ import annotations

from pathlib import Path

from pkgrepo.package.meta import PackageInfo
from pkgrepo.resolve.deps import parse_dep
from pkgrepo.resolve.local import PackageDir
from pkgrepo.resolve.model import Package


def to_package(info: PackageInfo, origin: str) -> Package:
    provides = []
    for p in info.provides:
        name, _, version = p.partition("=")
        provides.append((name, version or None))
    return Package(
        key=f"{info.name}={info.full_version}", name=info.name, version=info.full_version,
        installed_size=info.installed_size, depends=tuple((parse_dep(d),) for d in info.depends),
        provides=tuple(provides), origin=origin,
    )  # fmt: skip


class NativeIndex:
    def __init__(self, directory: Path):
        self.label = f"native:{directory}"
        self._by_name: dict[str, list[Package]] = {}
        for a in PackageDir(directory).packages:
            pkg = to_package(a.info, str(a.path))
            for name in {pkg.name, *(n for n, _v in pkg.provides)}:
                self._by_name.setdefault(name, []).append(pkg)

    def providers(self, name: str) -> list[Package]:
        return list(self._by_name.get(name, []))

    def names(self) -> list[str]:
        return sorted({p.name for ps in self._by_name.values() for p in ps})
