"""Opening files below a directory an attacker may have shaped: never through a link, only regular files.

Every component is opened with O_NOFOLLOW (directories with O_DIRECTORY) relative
to its parent's descriptor, and the final file with O_NONBLOCK so that a FIFO
cannot hang the open; `fstat` then refuses anything that is not a regular file
(FIFOs, devices, sockets). Sizes are bounded by the caller before a byte is read.

Kept in `image/` (not a base module) on purpose: base modules are part of the
build code's digest, and only the image room reads hostile trees this way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from pkgrepo.errors import BadInput

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
BLOCK = 1 << 20

KIND_NAMES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symlink",
}


def kind_name(mode: int) -> str:
    return KIND_NAMES.get(stat.S_IFMT(mode), "not a regular file")


def _refuse(where: str, e: OSError) -> BadInput:
    if e.errno == errno.ELOOP:
        return BadInput(f"{where}: is a symlink; refusing to follow it")
    if e.errno == errno.ENOTDIR:
        return BadInput(f"{where}: a directory on its way is a symlink or not a directory; refusing it")
    if e.errno == errno.ENOENT:
        return BadInput(f"{where}: is missing")
    return BadInput(f"{where}: cannot be opened ({e.strerror})")


def open_dir(parent_fd: int | None, rel: str, where: str) -> int:
    """A descriptor of directory `rel` below `parent_fd` (a path when None), component by component."""
    fd = -1
    try:
        if parent_fd is None:  # the caller's own path: its links are the caller's
            return os.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fd = os.dup(parent_fd)
        for part in [p for p in rel.split("/") if p]:
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except OSError as e:
        if fd >= 0:
            os.close(fd)
        raise _refuse(where, e) from None


def open_regular(dir_fd: int, rel: str, where: str) -> int:
    """A descriptor of the regular file `rel` below `dir_fd`; BadInput naming `where` otherwise."""
    parent, _, name = rel.rpartition("/")
    pfd = open_dir(dir_fd, parent, where)
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=pfd)
    except OSError as e:
        raise _refuse(where, e) from None
    finally:
        os.close(pfd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BadInput(f"{where}: is {kind_name(mode)}, not a regular file; refusing to read it")
    os.set_blocking(fd, True)
    return fd


def read_regular(dir_fd: int, rel: str, where: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (BadInput beyond)."""
    fd = open_regular(dir_fd, rel, where)
    with os.fdopen(fd, "rb") as f:
        if os.fstat(fd).st_size > limit:
            raise BadInput(f"{where}: larger than {limit} bytes; refusing to read it")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadInput(f"{where}: larger than {limit} bytes; refusing to read it")
    return data


def chunks(fd: int, size: int | None = None) -> Iterator[bytes]:
    """The bytes of an open file in blocks (at most `size` of them when given)."""
    left = size
    while left is None or left > 0:
        block = os.read(fd, BLOCK if left is None else min(BLOCK, left))
        if not block:
            return
        if left is not None:
            left -= len(block)
        yield block


@contextlib.contextmanager
def opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)
