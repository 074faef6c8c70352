"""The files pkgrepo itself writes into an image: accounts, name service, os-release, /tmp, homes
and the spec's own paths; deterministic, the same for prod and dev (so they share the layer).

Writes go through directory descriptors opened without following links, so a
symlink shipped by a package (say `etc -> /somewhere`) can never redirect them.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.spec import ImageSpec, resolve_owner
from pkgrepo.image.tree import Attrs
from pkgrepo.package.meta import FileKind, canonical_json

RECORD = "var/lib/pkgrepo/base-files.json"  # what the audit counts as owned by the base files
NSSWITCH = """\
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
"""


@dataclass(frozen=True)
class BaseFile:
    path: str  # relative
    kind: FileKind
    attrs: Attrs
    content: bytes = b""
    target: str | None = None


def _accounts(spec: ImageSpec) -> list[BaseFile]:
    users = spec.accounts.all_users()
    groups = spec.accounts.all_groups()
    passwd = "".join(f"{u.name}:x:{u.uid}:{u.group}:{u.name}:{u.home_dir}:{u.shell}\n" for u in users)
    group = "".join(f"{g.name}:x:{g.gid}:\n" for g in groups)
    shadow = "".join(f"{u.name}:*:::::::\n" for u in users)  # `*`: no password can ever match
    out = [
        BaseFile("etc/passwd", "file", Attrs(0o644), passwd.encode()),
        BaseFile("etc/group", "file", Attrs(0o644), group.encode()),
        BaseFile("etc/shadow", "file", Attrs(0o600), shadow.encode()),
        BaseFile("etc/nsswitch.conf", "file", Attrs(0o644), NSSWITCH.encode()),
        BaseFile("tmp", "dir", Attrs(0o1777)),
    ]
    for u in users:
        if u.home_dir != "/nonexistent":
            out.append(BaseFile(u.home_dir.lstrip("/"), "dir", Attrs(0o700, u.uid, u.group)))
    return out


def os_release(spec: ImageSpec) -> bytes:
    return (
        f'ID=pkgrepo\nNAME="pkgrepo"\nPRETTY_NAME="{spec.name} (built by pkgrepo)"\nIMAGE_ID={spec.name}\n'
    ).encode()


def base_files(spec: ImageSpec, has_os_release: bool) -> list[BaseFile]:
    files = _accounts(spec)
    if not has_os_release:
        files.append(BaseFile("etc/os-release", "file", Attrs(0o644), os_release(spec)))
    for p in spec.paths:
        uid, gid = resolve_owner(spec, p.owner) or (0, 0)
        files.append(
            BaseFile(p.rel, p.kind, Attrs(p.file_mode, uid, gid), (p.content or "").encode(), p.target)
        )
    return files


def repository_files(name: str, url: str, root_json: bytes) -> list[BaseFile]:
    """/etc/pkgrepo for a dev image's package manager (pkgrepo.repo.config reads it)."""
    listing = f"# NAME URL: the first is the default of `pkgrepo install|search|info`\n{name} {url}\n"
    return [
        BaseFile("etc/pkgrepo", "dir", Attrs(0o755)),
        BaseFile("etc/pkgrepo/repositories", "file", Attrs(0o644), listing.encode()),
        BaseFile("etc/pkgrepo/trusted", "dir", Attrs(0o755)),
        BaseFile(f"etc/pkgrepo/trusted/{name}.root.json", "file", Attrs(0o644), root_json),
    ]


class _Dirs:
    """Directory descriptors below a root, each component opened with O_NOFOLLOW."""

    def __init__(self, root: Path):
        self.fds = {"": os.open(root, os.O_RDONLY | os.O_DIRECTORY)}

    def get(self, rel: str) -> int:
        if rel in self.fds:
            return self.fds[rel]
        parent, _, name = rel.rpartition("/")
        pfd = self.get(parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=pfd)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=pfd)
        except OSError as e:
            raise BadInput(
                f"/{rel} in the image is a symlink or not a directory ({e.strerror}); "
                "a base file cannot be written through it"
            ) from None
        self.fds[rel] = fd
        return fd

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def write_base_files(root: Path, files: list[BaseFile]) -> dict[str, Attrs]:
    """Write `files` (replacing what packages put at those paths) and the record of them;
    returns the modes and owners to give those entries in the image."""
    dirs = _Dirs(root)
    attrs: dict[str, Attrs] = {}
    record = BaseFile(
        RECORD, "file", Attrs(0o644), canonical_json({"format": 1, "files": sorted(f.path for f in files)})
    )
    try:
        for f in [*files, record]:
            parent, _, name = f.path.rpartition("/")
            if f.kind == "dir":
                dirs.get(f.path)
            else:
                dfd = dirs.get(parent)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dfd)
                if f.kind == "symlink":
                    os.symlink(f.target or "", name, dir_fd=dfd)
                else:
                    fd = os.open(
                        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd
                    )
                    with os.fdopen(fd, "wb") as out:
                        out.write(f.content)
            attrs[f.path] = f.attrs
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise BadInput(
                f"/{e.filename or ''}: a directory in the image stands where a base file goes"
            ) from None
        raise
    finally:
        dirs.close()
    return attrs
