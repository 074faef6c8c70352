"""Install checked packages into a root filesystem and record what is there.

Every package is fully read and checked (`pkgrepo.package.extract`) before the
first byte is written. Files are then written under temporary names through
directory descriptors opened with O_NOFOLLOW (a symlink in the root can never
redirect a write), renamed into place, and the record of installed packages
(`var/lib/pkgrepo/installed.json`) is replaced last. A failure while writing
removes what was written, so the root is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.package.extract import CheckedPackage
from pkgrepo.package.meta import canonical_json
from pkgrepo.resolve.deps import parse_dep, satisfied_by

DB = "var/lib/pkgrepo/installed.json"
TMP_PREFIX = ".pkgrepo-new."


def read_db(rootfs: Path) -> dict[str, dict]:
    path = rootfs / DB
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())["packages"]
    except (ValueError, KeyError) as e:
        raise BadInput(
            f"{path}: installed-package record is corrupt ({e}); restore it or start a new root"
        ) from None


def _write_db(rootfs: Path, packages: dict[str, dict]) -> None:
    path = rootfs / DB
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(TMP_PREFIX + path.name)
    tmp.write_bytes(canonical_json({"format": 1, "packages": packages}))
    os.replace(tmp, path)


class _Writer:
    """Writes below one root without following any link; remembers what to undo."""

    def __init__(self, rootfs: Path, fresh_root: bool):
        self.root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
        self.made_dirs: list[str] = []
        # Directories this install created hold nothing else: files go straight to their names there.
        self.fresh: set[str] = {""} if fresh_root else set()
        self.created: list[tuple[int, str]] = []
        self.temps: list[tuple[int, str, str]] = []  # (dir fd, temp name, final name)
        self.fds: list[int] = [self.root_fd]
        self.opened: dict[str, int] = {"": self.root_fd}

    def _dir(self, rel: str, create: bool) -> int:
        """A descriptor of directory `rel`, each component opened without following links."""
        if rel in self.opened:
            return self.opened[rel]
        parent, _, name = rel.rpartition("/")
        pfd = self._dir(parent, create)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        try:
            fd = os.open(name, flags, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=pfd)
            self.made_dirs.append(rel)
            self.fresh.add(rel)
            fd = os.open(name, flags, dir_fd=pfd)
        except OSError as e:
            raise BadInput(f"/{rel} in the root is a symlink or not a directory ({e.strerror}); "
                           "refusing to write through it") from None  # fmt: skip
        self.fds.append(fd)
        self.opened[rel] = fd
        return fd

    def mkdir(self, rel: str) -> None:
        self._dir(rel, create=True)

    def stage(self, rel: str, kind: str, mode: int, data: bytes, target: str | None) -> None:
        parent, _, name = rel.rpartition("/")
        dfd = self._dir(parent, create=True)
        if parent in self.fresh:
            self._create(dfd, name, kind, mode, data, target)
            self.created.append((dfd, name))
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                raise BadInput(f"/{rel} is a directory in the root; a package cannot replace it")
        tmp = TMP_PREFIX + name
        try:
            self._create(dfd, tmp, kind, mode, data, target)
        except FileExistsError:  # left over by an install that was killed
            os.unlink(tmp, dir_fd=dfd)
            self._create(dfd, tmp, kind, mode, data, target)
        self.temps.append((dfd, tmp, name))

    @staticmethod
    def _create(dfd: int, tmp: str, kind: str, mode: int, data: bytes, target: str | None) -> None:
        if kind == "symlink":
            os.symlink(target or "", tmp, dir_fd=dfd)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)
            finally:
                os.close(fd)

    def commit(self) -> None:
        for dfd, tmp, name in self.temps:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        self.temps.clear()

    def rollback(self, rootfs: Path) -> None:
        for dfd, name in reversed(self.created):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dfd)
        for dfd, tmp, _ in self.temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
        for rel in reversed(self.made_dirs):
            with contextlib.suppress(OSError):
                os.rmdir(rootfs / rel)

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _owners(db: dict[str, dict]) -> dict[str, str]:
    return {f: name for name, rec in db.items() for f in rec.get("files", [])}


def _conflicts(rootfs: Path, pkgs: list[CheckedPackage], db: dict[str, dict]) -> Iterator[str]:
    owners = _owners(db)
    replacing = {p.info.name for p in pkgs}
    claimed: dict[str, str] = {}
    for p in pkgs:
        for e in p.manifest:
            if e.type == "dir":
                continue
            other = claimed.get(e.path) or owners.get(e.path)
            if other and other != p.info.name and other not in replacing:
                yield f"{p.info.name}: /{e.path} is already owned by {other}"
            elif other and other != p.info.name and claimed.get(e.path):
                yield f"{p.info.name}: /{e.path} is also in {other}"
            claimed[e.path] = p.info.name


def install(
    pkgs: list[CheckedPackage], rootfs: Path, requested: set[str] = frozenset(), source: str = ""
) -> list[str]:
    """Install checked packages into `rootfs`; return the names installed or replaced.

    `requested` names are recorded as asked for (upgrades resolve from them); `source`
    records where the packages came from."""
    fresh_root = not rootfs.exists()
    rootfs.mkdir(parents=True, exist_ok=True)
    db = read_db(rootfs)
    problems = list(_conflicts(rootfs, pkgs, db))
    if problems:
        raise BadInput(
            f"file conflict: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    writer = _Writer(rootfs, fresh_root)
    try:
        for p in pkgs:
            for m in p.members:
                if m.kind == "dir":
                    writer.mkdir(m.path)
                else:
                    writer.stage(m.path, m.kind, m.mode, m.data, m.linkpath)
        writer.commit()
        new_db = dict(db)
        for p in pkgs:
            old = db.get(p.info.name)
            files = sorted(e.path for e in p.manifest if e.type != "dir")
            if old:
                for stale in sorted(set(old.get("files", [])) - set(files), reverse=True):
                    with contextlib.suppress(OSError):
                        (rootfs / stale).unlink()
            new_db[p.info.name] = {
                "requested": p.info.name in requested or bool(old and old.get("requested")),
                "source": source,
                "version": p.info.full_version,
                "origin": p.info.origin,
                "depends": p.info.depends,
                "provides": p.info.provides,
                "installed_size": p.info.installed_size,
                "files": files,
            }
        _write_db(rootfs, new_db)
    except BadInput:
        writer.rollback(rootfs)
        raise
    except OSError as e:
        writer.rollback(rootfs)
        raise PkgrepoError(f"installing into {rootfs} failed: {e}; nothing was changed") from None
    finally:
        writer.close()
    return [p.info.name for p in pkgs]


def remove(names: list[str], rootfs: Path, force: bool = False) -> list[str]:
    """Remove installed packages' files (not shared directories) and their records.

    Refused, unless `force`, when a package staying behind depends on what only the removed ones provide."""
    db = read_db(rootfs)
    missing = [n for n in names if n not in db]
    if missing:
        raise BadInput(f"{missing[0]}: not installed in {rootfs}")
    for name, rec in sorted(db.items()):
        if force or name in names:
            continue
        for d in rec.get("depends", []):
            dep = parse_dep(d)
            providers = [
                n for n, r in db.items() if satisfied_by(dep, n, r["version"], r.get("provides", []))
            ]
            if providers and all(p in names for p in providers):
                raise BadInput(f"{providers[0]}: needed by {name} ({d}); remove {name} too, or pass --force")
    owners = _owners({n: r for n, r in db.items() if n not in names})
    for name in names:
        for rel in sorted(db[name]["files"], reverse=True):
            if rel in owners:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(rootfs / rel)
    _write_db(rootfs, {n: r for n, r in db.items() if n not in names})
    return names
