"""Writing outputs whole or not at all.

Each output is written under a temporary name in its target's directory and
renamed into place, the swap serialised by a lock on that directory. A
symlink at the target is refused, and so is a non-empty directory that is not
an earlier output of the same kind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pkgrepo.errors import BadInput
from pkgrepo.image.tree import Node

if TYPE_CHECKING:
    from pkgrepo.image.build import BuiltImage


def is_layout(path: Path) -> bool:
    """An OCI layout (whose index.json the layout reader then opens no-follow: a FIFO or link there
    is refused as such, not taken for a root directory)."""
    return (path / "oci-layout").is_file() and os.path.lexists(path / "index.json")


def is_rootfs(path: Path) -> bool:
    from pkgrepo.image.basefiles import RECORD

    return (path / RECORD).is_file()


def check_dir_target(out: Path, ours: Callable[[Path], bool], what: str) -> None:
    if out.is_symlink():
        raise BadInput(f"{out}: is a symlink; refusing to write the {what} through it")
    if out.exists():
        if not out.is_dir():
            raise BadInput(
                f"{out}: exists and is not a directory; remove it or choose another path for the {what}"
            )
        if any(out.iterdir()) and not ours(out):
            raise BadInput(f"{out}: is a non-empty directory that is not an {what}; choose another path")
    elif not out.parent.is_dir():
        raise BadInput(f"{out.parent}: is not an existing directory; create it first")


def check_file_target(out: Path, what: str) -> None:
    if out.is_symlink():
        raise BadInput(f"{out}: is a symlink; refusing to write the {what} through it")
    if out.exists() and not out.is_file():
        raise BadInput(f"{out}: exists and is not a regular file; choose another path for the {what}")
    if not out.parent.is_dir():
        raise BadInput(f"{out.parent}: is not an existing directory; create it first")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def replace_dir(out: Path, ours: Callable[[Path], bool], what: str) -> Iterator[Path]:
    """Yield an empty temporary directory beside `out`; on success it becomes `out`."""
    check_dir_target(out, ours, what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        with _locked(out.parent):
            check_dir_target(out, ours, what)
            old = None
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                os.rename(out, old / "x")
            os.rename(tmp, out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_file(out: Path, data: bytes, what: str) -> None:
    check_file_target(out, what)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(name, 0o644)
        with _locked(out.parent):
            check_file_target(out, what)
            os.replace(name, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def materialize(tree: dict[str, Node], directory: Path) -> None:
    """Write `tree` into the empty `directory` with its modes (and owners, when running as root)."""
    as_root = os.geteuid() == 0
    for path, node in tree.items():
        target = directory / path
        if node.kind == "dir":
            target.mkdir()
        elif node.kind == "symlink":
            target.symlink_to(node.target or "")
        else:
            target.write_bytes(node.read())
        if as_root:
            os.lchown(target, node.uid, node.gid)
        if node.kind == "file":
            os.chmod(target, node.mode)
    for path, node in reversed(
        tree.items()
    ):  # directories last, children first: 0500 stays writable until done
        if node.kind == "dir":
            os.chmod(directory / path, node.mode)


def write_outputs(
    built: BuiltImage,
    layout: Path | None,
    rootfs: Path | None,
    tar: Path | None,
    archive: Path | None,
    evidence: dict[str, bytes] | None = None,
) -> None:
    """Write what was asked for of a built image; each output appears whole or not at all.
    `evidence` (pkgrepo.image.evidence) goes into the layout's `evidence/` directory."""
    from pkgrepo.image.layers import layer_tar
    from pkgrepo.image.oci import docker_archive, write_layout

    check_outputs(layout, rootfs, tar, archive)
    if layout is not None:
        with replace_dir(layout, is_layout, "OCI image layout") as tmp:
            write_layout(built.image, tmp)
            if evidence:
                (tmp / "evidence").mkdir()
                for name, data in sorted(evidence.items()):
                    (tmp / "evidence" / name).write_bytes(data)
    if rootfs is not None:
        with replace_dir(rootfs, is_rootfs, "root filesystem") as tmp:
            materialize(built.assembled.tree, tmp)
    if tar is not None:
        tree = built.assembled.tree
        replace_file(tar, layer_tar(tree, list(tree), built.epoch), "rootfs tarball")
    if archive is not None:
        replace_file(
            archive, docker_archive(built.image, f"{built.spec.name}:{built.profile}"), "docker archive"
        )


def check_outputs(layout: Path | None, rootfs: Path | None, tar: Path | None, archive: Path | None) -> None:
    """Refuse bad targets before any work is done."""
    if layout is not None:
        check_dir_target(layout, is_layout, "OCI image layout")
    if rootfs is not None:
        check_dir_target(rootfs, is_rootfs, "root filesystem")
    for path in (tar, archive):
        if path is not None:
            check_file_target(path, "output file")
