"""The one place images call the install code: check packages, then install them into a root.

Kept to one small function so that a change of the install API is adapted here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.rootfs import DB, Rootfs
from pkgrepo.package.extract import check_package
from pkgrepo.package.meta import PackageInfo

INSTALLED_DB = DB  # the installed-package record, where scanners and the dev package manager read it


@dataclass(frozen=True)
class Fetched:
    """A package file, and the name and version the index promised for it."""

    name: str
    version: str
    path: Path


def populate(root: Path, packages: list[Fetched], requested: set[str], source: str
             ) -> tuple[list[PackageInfo], dict[str, list[str]]]:  # fmt: skip
    """Install `packages` (all checked before the first write) into `root`.

    Returns the packages' metadata and, for each installed name, the files it owns."""
    checked = []
    for f in packages:
        c = check_package(f.path)
        if (c.info.name, c.info.full_version) != (f.name, f.version):
            raise BadInput(f"{f.path}: contains {c.info.name} {c.info.full_version}, the index says "
                           f"{f.name} {f.version}; refusing")  # fmt: skip
        checked.append(c)
    with Rootfs.open(root, create=True) as dest:
        dest.install(checked, requested=requested, source=source)
        files = {name: list(rec.files) for name, rec in dest.installed().items()}
    return [c.info for c in checked], files
