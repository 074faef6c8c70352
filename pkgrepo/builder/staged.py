"""Read a staged install tree on the host without trusting it.

The staged tree was written by recipe-controlled code as the build user, so
the host (possibly root) reads it only through these calls: every path
component is opened relative to its parent's descriptor without following
links, the last one with O_NOFOLLOW|O_NONBLOCK and checked with fstat. A
symbolic link is never followed (a `.pc` link to a root-only file reads as a
link, not as that file); FIFOs, sockets and device nodes are refused with a
one-line error, so nothing can make the host hang or read a device.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from pkgrepo.errors import BuildFailed

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def special(root: Path, rel: str, mode: int) -> BuildFailed:
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device node"
    return BuildFailed(f"{root}/{rel} is a {kind}; only regular files, directories and links are read")


def check_tree(root: Path, top: Path) -> None:
    """Refuse a staged tree holding anything but files, directories and symbolic links.

    `root` is below `top` (a directory pkgrepo made): every component between them must
    still be a real directory, or the walk would follow a link the build put there.
    """
    real_dir(top, root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                raise special(root, os.path.relpath(os.path.join(dirpath, name), root), mode)


def real_dir(top: Path, path: Path) -> None:
    """Refuse `path` unless it and each directory between `top` and it is a directory, not a link."""
    here = top
    for part in path.relative_to(top).parts:
        here = here / part
        if not stat.S_ISDIR(os.lstat(here).st_mode):
            raise BuildFailed(
                f"{here}: the build replaced this directory with something else; it must stay one"
            )


def open_regular(root: Path, rel: str) -> BinaryIO | None:
    """`root/rel` opened for reading if it is a regular file; None for a link or a directory."""
    parts = rel.split("/")
    fd = os.open(root, DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    return None  # a link on the way: never followed
                raise
            os.close(fd)
            fd = child
        mode = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            return None
        if not stat.S_ISREG(mode):
            raise special(root, rel, mode)
        try:
            ffd = os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENXIO):
                return None  # swapped for a link or a socket since the stat: not read
            raise
    finally:
        os.close(fd)
    mode = os.fstat(ffd).st_mode
    if not stat.S_ISREG(mode):
        os.close(ffd)
        raise special(root, rel, mode)
    return os.fdopen(ffd, "rb")


def read_head(root: Path, rel: str, size: int) -> bytes | None:
    """The first `size` bytes of a regular file, or None when `rel` is not one."""
    f = open_regular(root, rel)
    if f is None:
        return None
    with f:
        return f.read(size)


def read_file(root: Path, rel: str) -> bytes:
    """All of regular file `root/rel`, read without following links; BuildFailed otherwise."""
    f = open_regular(root, rel)
    if f is None:
        raise BuildFailed(f"{root}/{rel}: a link or a directory where a regular file belongs; not read")
    with f:
        return f.read()


def write_file(root: Path, rel: str, data: bytes) -> None:
    """Write `data` to `root/rel` (a file pkgrepo adds to a staged tree, such as a package's own
    SBOM) without following any link the build left there.

    Missing directories are created; a component that is a link or not a directory, or a
    final name that is not a regular file, is refused: the host (possibly root) must never
    create or overwrite a file outside the tree because the build planted a link.
    """
    parts = rel.split("/")
    fd = os.open(root, DIR_FLAGS)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/".join(parts[: i + 1])
                raise BuildFailed(
                    f"{root}/{where}: the build put a link or a file where pkgrepo writes "
                    f"/{rel}; it must be a directory"
                ) from None
            os.close(fd)
            fd = child
        try:
            ffd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                0o644,
                dir_fd=fd,
            )
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EWOULDBLOCK):
                raise
            raise BuildFailed(
                f"{root}/{rel}: the build put a link or something other than a regular file "
                "where pkgrepo writes this file; leave it to pkgrepo"
            ) from None
    finally:
        os.close(fd)
    with os.fdopen(ffd, "wb") as f:
        if not stat.S_ISREG(os.fstat(ffd).st_mode):
            raise BuildFailed(f"{root}/{rel}: not a regular file; leave it to pkgrepo")
        f.truncate(0)
        f.write(data)
