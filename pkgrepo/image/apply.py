"""Bring a root filesystem to a resolved closure: fetch, check, install (pypa/installer's shape).

`apply(result, fetch, root)` is the whole job; where the package bytes come
from — a packages directory or the verifying repository client — is the
`fetch` callable at the edge, and every write goes through the rootfs
destination (`pkgrepo.image.rootfs.Rootfs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.rootfs import Rootfs
from pkgrepo.package.extract import CheckedPackage, check_package
from pkgrepo.resolve.minimize import Result
from pkgrepo.resolve.model import Package


def apply(result: Result, fetch: Callable[[Package], Path], root: Rootfs, requested: set[str], source: str,
          overwrite: bool = False) -> list[CheckedPackage]:  # fmt: skip
    """Install what the open root lacks of `result`; every package is checked before anything is written."""
    db = root.installed()
    checked = []
    for p in result.packages:
        if p.name in db and db[p.name].version == p.version:
            continue
        c = check_package(fetch(p))
        if (c.info.name, c.info.full_version) != (p.name, p.version):
            raise BadInput(f"{c.path}: contains {c.info.name} {c.info.full_version}, the index says "
                           f"{p.name} {p.version}; refusing")  # fmt: skip
        checked.append(c)
    root.install(checked, requested, source, overwrite)
    return checked
