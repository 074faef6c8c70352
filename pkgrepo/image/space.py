"""Room for a transaction: the declared unpacked size against the free space, before writing.

A package may honestly declare a file far larger than itself (a 148 KB package
holding 4.5 GiB of zeros). The checks refuse it before the first byte is
written, as apt does ("need X, Y free on DIR"): first with the sizes the index
declares (signed, in a repository), against the file system of the root (with
those mounted inside it, together) and of the temporary directory the packages
are spooled to while checked; then, once every package is checked, with each
file rounded up to its file system's block and one inode per entry, against the
file system each file lands on: the root's, or one mounted inside the root (a
tmpfs at ROOT/var holds what goes to var/, and is checked on its own). Free means what an
unprivileged writer may use (`f_bavail`, `f_favail`). The refusal is a failure of
the work, not bad input (exit 1): the same packages install where there is room.
"""

from __future__ import annotations

import os
import re
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


def _mounts_below(root: Path) -> list[Path]:
    """The mount points strictly inside `root` (from /proc/self/mountinfo; none where it cannot be read)."""
    top = root.resolve()
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        if point != top and point.is_relative_to(top):
            found.append(point)
    return found


def _free(where: Path) -> tuple[int, int, int, int]:
    """(bytes free, block size, inodes free, inode limit) of the file system holding `where`."""
    st = os.statvfs(where)
    return st.f_bavail * st.f_frsize, st.f_frsize or 4096, st.f_favail, st.f_files


def check_declared(root: Path, declared: int) -> None:
    """The index's declared unpacked total against the root's and the spool's file systems. A file
    system mounted inside the root (ROOT/var a tmpfs) takes part of the files: here the total is held
    against the free space of all of them together, and `check_checked` splits it file by file."""
    if declared <= 0:
        return
    spool = Path(tempfile.gettempdir())
    inside: dict[int, Path] = {}
    for where in [root, *_mounts_below(root)]:
        inside.setdefault(os.stat(where).st_dev, where)
    room = sum(_free(where)[0] for where in inside.values())
    if declared > room and len(inside) == 1:
        _refuse("not enough space for the transaction", root, size_text(declared), size_text(room))
    if declared > room:
        n = len(inside) - 1
        mounted = f"{n} file system{'s' if n > 1 else ''}"
        raise PkgrepoError(
            f"not enough space for the transaction: need {size_text(declared)}, {size_text(room)} free on "
            f"{mount_point(root)} and the {mounted} mounted inside {root}; "
            "free some space or install elsewhere"
        )
    if os.stat(spool).st_dev not in inside:
        free = _free(spool)[0]
        if declared > free:
            _refuse(
                "not enough space to check the packages in TMPDIR",
                spool,
                size_text(declared),
                size_text(free),
            )


class _Places:
    """Which file system each path of the root lands on: that of its deepest existing directory
    (a mount point inside the root is an existing directory, so a file under ROOT/var lands on
    whatever is mounted there). Looked up once per directory."""

    def __init__(self, root: Path):
        self.root = root
        self._dirs: dict[str, tuple[int, Path]] = {}

    def of(self, rel: str) -> tuple[int, Path]:
        parent = rel.rpartition("/")[0]
        missing = []
        while parent not in self._dirs:
            where = self.root / parent
            if not parent or where.is_dir():  # follows links: a write through one lands at its target
                self._dirs[parent] = (os.stat(where).st_dev, where)
                break
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for m in missing:  # not there yet: made on the file system of the nearest existing directory
            self._dirs[m] = self._dirs[parent]
        return self._dirs[parent]


def check_checked(root: Path, packages: Iterable[CheckedPackage]) -> None:
    """Every checked file rounded up to a block, one inode per entry, against the file system it
    lands on: the root's, or one mounted inside the root."""
    places = _Places(root)
    need: dict[int, list] = {}  # device -> [a directory on it, bytes, inodes]
    blocks: dict[int, int] = {}
    for p in packages:
        for e in p.manifest:
            dev, where = places.of(e.path.strip("/"))
            if dev not in need:
                need[dev] = [where, 0, 0]
                blocks[dev] = _free(where)[1]
            block = blocks[dev]
            need[dev][1] += -(-e.size // block) * block if e.type == "file" else 0
            need[dev][2] += 1
    for where, size, inodes in need.values():
        free, _, ifree, ilimit = _free(where)
        if size > free:
            _refuse("not enough space for the transaction", where, size_text(size), size_text(free))
        if ilimit and inodes > ifree:  # 0 files: a file system without an inode limit
            _refuse("not enough inodes for the transaction", where, f"{inodes} inodes", f"{ifree} inodes")
