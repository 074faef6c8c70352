"""An OCI image layout's root filesystem, unpacked into a fresh directory for reading.

`pkgrepo sbom`, `scan` and `verify` read an image as they read an installed
root (its package database, SBOMs and files). Layers are applied in order,
whiteouts remove what lower layers added; only directories, regular files and
symlinks are written, names are checked (no absolute path, no `..`) and no
write ever goes through a symlink a layer planted, so a hostile layout cannot
write outside the directory.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.oci import read_layout
from pkgrepo.image.outputs import is_layout


def _safe(dest: Path, name: str, where: Path) -> Path:
    rel = posixpath.normpath(name.lstrip("/")).removeprefix("./")
    if rel in ("", ".") or rel == ".." or rel.startswith("../"):
        raise BadInput(f"{where}: layer member {name!r} leaves the root; refusing the image")
    target = dest / rel
    parent = target.parent
    while parent != dest:  # never through a link a layer planted
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise BadInput(
                f"{where}: layer member {name!r} would be written through a link; refusing the image"
            )
        parent = parent.parent
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def unpack(layout: Path, dest: Path) -> None:
    image = read_layout(layout)
    for blob in image.layers:
        try:
            data = blob.read_bytes()
        except OSError as e:
            raise BadInput(f"{blob}: cannot read the layer ({e.strerror})") from None
        if hashlib.sha256(data).hexdigest() != blob.name:
            raise BadInput(f"{blob}: does not match its digest; the layout is damaged")
        try:
            with gzip.open(io.BytesIO(data)) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for m in tar:
                    base = posixpath.basename(m.name.rstrip("/"))
                    if base.startswith(".wh."):
                        gone = _safe(dest, posixpath.join(posixpath.dirname(m.name), base[4:]), blob)
                        _remove(gone)
                        continue
                    target = _safe(dest, m.name, blob)
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _remove(target)
                    if m.issym():
                        os.symlink(m.linkname, target)
                    elif m.isreg():
                        src = tar.extractfile(m)
                        with open(target, "xb") as out:
                            shutil.copyfileobj(src, out)  # type: ignore[arg-type]
                        os.chmod(target, m.mode & 0o755)
        except (OSError, tarfile.TarError, EOFError) as e:
            raise BadInput(f"{blob}: not a readable gzip tar layer ({e})") from None


@contextlib.contextmanager
def as_root(path: Path) -> Iterator[Path]:
    """`path` itself when it is a directory tree; an OCI layout's root unpacked into a temporary one."""
    if not is_layout(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as tmp:
        root = Path(tmp) / path.resolve().name
        root.mkdir()
        unpack(path, root)
        yield root
