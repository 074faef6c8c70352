"""Bring a root filesystem to a resolved closure: fetch, check, install (pypa/installer's shape).

`apply(result, fetch, rootfs)` is the whole job; where the package bytes come
from — a packages directory or the verifying repository client — is the
`fetch` callable at the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.rootfs import install, read_db
from pkgrepo.package.extract import CheckedPackage, check_package
from pkgrepo.resolve.minimize import Result
from pkgrepo.resolve.model import Package


def apply(result: Result, fetch: Callable[[Package], Path], rootfs: Path, requested: set[str], source: str
          ) -> list[CheckedPackage]:  # fmt: skip
    """Install what the root lacks of `result`; every package is checked before anything is written."""
    db = read_db(rootfs)
    checked = []
    for p in result.packages:
        if db.get(p.name, {}).get("version") == p.version:
            continue
        c = check_package(fetch(p))
        if (c.info.name, c.info.full_version) != (p.name, p.version):
            raise BadInput(f"{c.path}: contains {c.info.name} {c.info.full_version}, the index says "
                           f"{p.name} {p.version}; refusing")  # fmt: skip
        checked.append(c)
    install(checked, rootfs, requested=requested, source=source)
    return checked
