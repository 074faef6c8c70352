"""The one place images call the install code: check packages, then install them into a root.

Kept to one small function so that a change of the install API is adapted here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pkgrepo.image.apply import check_as
from pkgrepo.package.meta import PackageInfo
from pkgrepo.package.rootfs import DB, Rootfs

INSTALLED_DB = DB  # the installed-package record, where scanners and the dev package manager read it


@dataclass(frozen=True)
class Fetched:
    """A package file, and the name and version the index promised for it."""

    name: str
    version: str
    path: Path


def populate(
    root: Path, packages: list[Fetched], requested: set[str], source: str
) -> tuple[list[PackageInfo], dict[str, list[str]]]:
    """Install `packages` (all checked before the first write) into `root`.

    Returns the packages' metadata and, for each installed name, the files it owns."""
    checked = [check_as(f.path, f.name, f.version) for f in packages]
    with Rootfs.open(root, create=True) as dest:
        dest.install(checked, requested=requested, source=source)
        files = {name: list(rec.files) for name, rec in dest.installed().items()}
    return [c.info for c in checked], files
