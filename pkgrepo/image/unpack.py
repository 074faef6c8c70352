"""An OCI image layout's root filesystem, unpacked into a private directory for reading.

`pkgrepo sbom`, `scan`, `verify` and `image audit` read an image the same way,
through this one reader. Each layer blob is opened no-follow as a regular file,
bounded by its descriptor's size and matched against its digest before a byte
of it is parsed (`LayoutImage.open_layer`). Its members are then placed as a
container runtime places them (`pkgrepo.image.layertree`): names are resolved
inside the root (`../bin/sh` is `bin/sh`), links on the way are followed inside
the root, whiteouts and opaque directories remove what lower layers added, and
every write goes through directory descriptors into a fresh directory only this
process can reach. A budget bounds what unpacking writes: the members and the
bytes of the whole image (`PKGREPO_IMAGE_MAX_FILES`, `PKGREPO_IMAGE_MAX_BYTES`)
and, per layer, `PKGREPO_IMAGE_MAX_RATIO` (default `MAX_RATIO`) times its compressed size (at least `RATIO_FLOOR`),
checked against each member's declared size before it is written.

Whatever reads the tree afterwards reads paths from the image's own package
database; `check_inventory` refuses a database whose names leave the root or
reach a file through a link, a FIFO or a device, so nothing is ever opened on
the host.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from pkgrepo.errors import BadInput
from pkgrepo.image.layertree import Entry, Tree, Unresolvable, canonical
from pkgrepo.image.oci import Descriptor, LayoutImage, read_layout
from pkgrepo.image.outputs import is_layout
from pkgrepo.limits import env_bytes
from pkgrepo.package.extract import DB_DIR, SBOM_DIR, own_sboms
from pkgrepo.package.meta import NAME_RE
from pkgrepo.package.rootfs import installed_in

MAX_BYTES = 16 << 30  # file bytes of a whole image
MAX_FILES = 300_000  # members of a whole image (a CPython dev image has about 5 000)
MAX_RATIO = 100  # a layer unpacks to at most this many times its compressed size...
RATIO_FLOOR = 64 << 20  # ...or this, whichever is more
MAX_SBOM = 64 << 20  # bytes of a package's own SBOM in a root
BLOCK = 1 << 20
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass
class Budget:
    bytes: int
    files: int
    ratio: int

    @classmethod
    def from_env(cls) -> Budget:
        return cls(
            env_bytes("PKGREPO_IMAGE_MAX_BYTES", MAX_BYTES),
            env_bytes("PKGREPO_IMAGE_MAX_FILES", MAX_FILES),
            env_bytes("PKGREPO_IMAGE_MAX_RATIO", MAX_RATIO),
        )


def _decompressed(blob: IO[bytes]) -> IO[bytes]:
    magic = blob.read(4)
    blob.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=blob, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(blob)  # type: ignore[return-value]
    return blob


def _blocks(f: IO[bytes] | None) -> Iterator[bytes]:
    while f is not None and (block := f.read(BLOCK)):
        yield block


def _short(name: str) -> str:
    return name if len(name) <= 120 else name[:100] + "..."


def _apply(tree: Tree, tar: tarfile.TarFile, where: str, budget: Budget, layer_bytes: int) -> None:
    added: set[str] = set()
    while (m := tar.next()) is not None:
        tar.members.clear()  # a stream's members are not needed again: memory stays flat
        budget.files -= 1
        if budget.files < 0:
            raise BadInput(f"{where}: more members than PKGREPO_IMAGE_MAX_FILES allows; refusing the image")
        rel = canonical(m.name)
        base = rel.rpartition("/")[2]
        try:
            if base.startswith(WHITEOUT):
                parent = tree.resolve(rel.rpartition("/")[0])
                if base == OPAQUE:
                    for child in tree.children(parent):
                        if child not in added:
                            tree.remove(child)
                else:
                    tree.remove(f"{parent}/{base[len(WHITEOUT) :]}".lstrip("/"))
                continue
            rel = tree.place(m.name)
            if rel == "":
                continue  # the root itself
            added.add(rel)
            entry = Entry("other", m.mode & 0o7777, m.size, m.linkname, m.uid, m.gid)
            if m.isdir():
                tree.add_dir(rel, Entry("dir", entry.mode, 0, "", m.uid, m.gid))
            elif m.issym():
                tree.add_symlink(rel, Entry("symlink", 0o777, 0, m.linkname, m.uid, m.gid))
            elif m.islnk():
                tree.add_hardlink(rel, m.linkname, m.mode & 0o7777)
            elif m.isreg():
                layer_bytes -= m.size
                budget.bytes -= m.size
                if layer_bytes < 0 or budget.bytes < 0:
                    raise BadInput(
                        f"{where}: member {_short(m.name)!r} ({m.size} bytes) goes past the unpacking budget "
                        f"(a layer unpacks to at most {budget.ratio}x its size or {RATIO_FLOOR >> 20} MiB, "
                        "PKGREPO_IMAGE_MAX_RATIO; an image to PKGREPO_IMAGE_MAX_BYTES); refusing the image"
                    )
                tree.add_file(
                    rel, Entry("file", entry.mode, m.size, "", m.uid, m.gid), _blocks(tar.extractfile(m))
                )
            else:
                tree.add_other(rel, entry)
        except Unresolvable as e:
            raise BadInput(f"{where}: layer member {_short(m.name)!r}: {e}; refusing the image") from None


def unpack_into(image: LayoutImage, tree: Tree, budget: Budget | None = None) -> None:
    """Apply the image's layers, in order, to `tree`."""
    budget = budget or Budget.from_env()
    for desc in image.layers:
        _unpack_layer(image, desc, tree, budget)


def _unpack_layer(image: LayoutImage, desc: Descriptor, tree: Tree, budget: Budget) -> None:
    where = f"{image.path}/blobs/sha256/{desc.hex}"
    with image.open_layer(desc) as blob:
        try:
            with _decompressed(blob) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                _apply(tree, tar, where, budget, max(RATIO_FLOOR, budget.ratio * desc.size))
        except (OSError, tarfile.TarError, EOFError, zstandard.ZstdError) as e:
            raise BadInput(f"{where}: not a readable tar layer ({str(e)[:160]})") from None


@contextlib.contextmanager
def unpacked(layout: Path) -> Iterator[tuple[LayoutImage, Tree]]:
    """The layout's image and its root, unpacked into a private temporary directory."""
    image = read_layout(layout)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as tmp:
        os.chmod(tmp, 0o700)
        root = Path(tmp) / (layout.resolve().name or "root")
        root.mkdir()
        tree = Tree(root)
        try:
            unpack_into(image, tree)
        finally:
            tree.close()
        yield image, tree


def unpack(layout: Path, dest: Path) -> None:
    """Unpack a layout's root into the empty directory `dest`."""
    tree = Tree(dest)
    try:
        unpack_into(read_layout(layout), tree)
    finally:
        tree.close()


def check_inventory(root: Path) -> None:
    """Refuse a root whose package database names a path outside it, through a link, or not a
    regular file or symlink (a FIFO, a device, a directory), before anything reads those paths."""
    db = installed_in(root)
    dirs: dict[str, str] = {"": "dir"}

    def state(rel: str) -> str:
        """dir, missing or bad (a link, a file or anything else on the way)."""
        todo = []
        while rel not in dirs:
            todo.append(rel)
            rel = rel.rpartition("/")[0]
        for d in reversed(todo):
            above = dirs[d.rpartition("/")[0]]
            if above != "dir":
                dirs[d] = above
                continue
            try:
                dirs[d] = "dir" if stat.S_ISDIR(os.lstat(root / d).st_mode) else "bad"
            except FileNotFoundError:
                dirs[d] = "missing"
        return dirs[todo[0] if todo else rel]

    def bad(name: str, rel: str, why: str) -> BadInput:
        return BadInput(
            f"{root / DB_DIR / 'installed.json'}: package {name[:80]!r} lists /{rel[:200]}, which {why}; "
            "the root's package database cannot be trusted"
        )

    for name, rec in db.items():
        if not re.match(NAME_RE, name):
            raise bad(name, SBOM_DIR, "is not a package name")
        for rel in [*rec.files, *own_sboms(name)]:
            if rel.startswith("/") or any(p in ("", ".", "..") for p in rel.split("/")):
                raise bad(name, rel, "is not a plain path inside the root")
            above = state(rel.rpartition("/")[0])
            if above == "bad":
                raise bad(name, rel, "is reached through a link or a file")
            if above == "missing":
                continue
            try:
                st = os.lstat(root / rel)
            except FileNotFoundError:
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise bad(name, rel, "is not a regular file or a symlink")
            if rel in own_sboms(name) and st.st_size > MAX_SBOM:
                raise bad(name, rel, f"is larger than {MAX_SBOM} bytes")


@contextlib.contextmanager
def as_root(path: Path) -> Iterator[Path]:
    """`path` itself when it is a directory tree; an OCI layout's root unpacked into a private one.
    Either way its package database was checked (`check_inventory`)."""
    if not is_layout(path):
        check_inventory(path)
        yield path
        return
    with unpacked(path) as (_image, tree):
        assert tree.root is not None
        try:
            check_inventory(tree.root)
            yield tree.root
        except BadInput as e:  # name the layout, not the private directory that is about to go
            raise BadInput(str(e).replace(str(tree.root), str(path))) from None
