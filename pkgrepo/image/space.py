"""Room for a transaction: the declared unpacked size against the free space, before writing.

A package may honestly declare a file far larger than itself (a 148 KB package
holding 4.5 GiB of zeros). The checks refuse it before the first byte is
written, as apt does ("need X, Y free on DIR"): first with the sizes the index
declares (signed, in a repository), against the file system of the root and of
the temporary directory the packages are spooled to while checked; then, once
every package is checked, with each file rounded up to the file system's block
and one inode per entry, against the root's file system. Free means what an
unprivileged writer may use (`f_bavail`, `f_favail`). The refusal is a failure of
the work, not bad input (exit 1): the same packages install where there is room.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pkgrepo.errors import PkgrepoError
from pkgrepo.package.extract import CheckedPackage


def size_text(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while n >= 1024 and len(units) > 1:
        n /= 1024
        units.pop(0)
    return f"{n:.0f} B" if units[0] == "B" else f"{n:.1f} {units[0]}"


def mount_point(path: Path) -> Path:
    """The directory at which `path`'s file system is mounted (for the message)."""
    path = path.resolve()
    dev = os.stat(path).st_dev
    while path.parent != path and os.stat(path.parent).st_dev == dev:
        path = path.parent
    return path


def _refuse(what: str, where: Path, need: str, free: str) -> None:
    raise PkgrepoError(
        f"{what}: need {need}, {free} free on {mount_point(where)}; free some space or install elsewhere"
    )


def check_declared(root: Path, declared: int) -> None:
    """The index's declared unpacked total against the root's and the spool's file systems."""
    if declared <= 0:
        return
    places = {os.stat(root).st_dev: (root, "not enough space for the transaction")}
    spool = Path(tempfile.gettempdir())
    places.setdefault(os.stat(spool).st_dev, (spool, "not enough space to check the packages in TMPDIR"))
    for where, what in places.values():
        st = os.statvfs(where)
        free = st.f_bavail * st.f_frsize
        if declared > free:
            _refuse(what, where, size_text(declared), size_text(free))


def check_checked(root: Path, packages: Iterable[CheckedPackage]) -> None:
    """Every checked file rounded up to a block, one inode per entry, against the root's file system."""
    st = os.statvfs(root)
    block = st.f_frsize or 4096
    need, inodes = 0, 0
    for p in packages:
        for e in p.manifest:
            need += -(-e.size // block) * block if e.type == "file" else 0
            inodes += 1
    free = st.f_bavail * st.f_frsize
    if need > free:
        _refuse("not enough space for the transaction", root, size_text(need), size_text(free))
    if st.f_files and inodes > st.f_favail:  # 0 files: a file system without an inode limit
        _refuse("not enough inodes for the transaction", root, f"{inodes} inodes", f"{st.f_favail} inodes")
