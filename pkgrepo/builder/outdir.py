"""The packages of a build's output directory, each header read once per run.

Every build asks the output directory for its build dependencies, its runtime
dependencies and its test root; reading every package header for each of those
questions made `build --all` quadratic in the number of packages. This view
reads a file's header the first time it sees the file and again only when the
file changed (another inode, size or time: a package replaced by another run,
the reproducibility check or a dask worker); packages a build writes itself are
recorded from the metadata it wrote, never read back. Builds run concurrently
(`schedule.run_dag`), so every access holds one lock.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from pkgrepo.digest import sha256_file
from pkgrepo.package.archive import read_info
from pkgrepo.package.meta import PACKAGE_SUFFIX, PackageInfo
from pkgrepo.resolve.model import Package
from pkgrepo.resolve.native import closure, to_package

Signature = tuple[int, int, int, int]


def _signature(st: os.stat_result) -> Signature:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class PackagesDir:
    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = threading.Lock()
        self._known: dict[str, tuple[Signature, Package]] = {}  # file name -> what it was when read
        self._digests: dict[str, tuple[Signature, str]] = {}

    def digest(self, path: Path) -> str:
        """A package file's sha256, computed once per version of the file (every dependent build asks)."""
        st = path.stat()
        with self._lock:
            known = self._digests.get(str(path))
            if known is not None and known[0] == _signature(st):
                return known[1]
        digest = sha256_file(path)
        with self._lock:
            self._digests[str(path)] = (_signature(st), digest)
        return digest

    def packages(self) -> list[Package]:
        """Every package file of the directory now, by file name."""
        with self._lock:
            current: dict[str, tuple[Signature, Package]] = {}
            for path in sorted(self.directory.glob(f"*{PACKAGE_SUFFIX}")):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                known = self._known.get(path.name)
                if known is None or known[0] != _signature(st):
                    known = (_signature(st), to_package(read_info(path), str(path)))
                current[path.name] = known
            self._known = current
            return [pkg for _sig, pkg in current.values()]

    def closure(self, roots: list[str]) -> list[Package]:
        """`resolve.native.closure` over this view: the newest packages only."""
        return closure(self.directory, roots, self.packages())

    def move_in(self, src: Path, info: PackageInfo) -> Path:
        """Move a finished package file into the directory, recording it as `info` says."""
        dest = self.directory / src.name
        with self._lock:
            os.replace(src, dest)
            self._known[dest.name] = (_signature(dest.stat()), to_package(info, str(dest)))
        return dest
