"""The rootfs destination: the one owner of every write, unlink and rename in a root.

A package is hostile even when validly signed, and so is whatever already sits
in the root. `Rootfs.open(path)` opens the root directory, locks it (flock on
the root directory itself, waiting up to `LOCK_TIMEOUT` seconds) and finishes
or rolls back a transaction a killed command left behind. Every access below
the root goes through directory descriptors opened component by component with
O_NOFOLLOW|O_DIRECTORY (`dir_fd=`), never by path, so no symlink in the root
can redirect a write, an unlink or the database.

A transaction (`install`, `remove`) is planned first without writing: conflicts,
files owned by no package, directories that are symlinks or files are refused
then, and the root is left byte-for-byte as it was. Then a journal
(`var/lib/pkgrepo/journal.json`, fsynced) records the plan before the first
write; files are written under temporary names (`.pkgrepo-new.N`) next to
their final names; the journal is marked committed; temporary names are
renamed into place, stale files unlinked, the database
(`var/lib/pkgrepo/installed.json`) replaced, and the journal removed. The next
`Rootfs.open` rolls an uncommitted journal back and a committed one forward, so
kill -9 at any point leaves a root whose database matches its files.

One module past 400 lines on purpose: the descriptors, the plan, the journal and
its recovery are one mechanism, and the safety argument is read in one place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.package.extract import DB_DIR, RESERVED_PREFIX, CheckedPackage
from pkgrepo.package.meta import canonical_json
from pkgrepo.safeio import untrusted_json

DB_NAME = "installed.json"
DB = f"{DB_DIR}/{DB_NAME}"
JOURNAL = "journal.json"
NEW_SUFFIX = ".new"  # a database or journal being written, renamed into place when complete
TMP_PREFIX = RESERVED_PREFIX + "new."
LOCK_TIMEOUT = 300.0  # seconds a command waits for another one holding the root
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class InstalledPackage:
    """One package's record in the root's database."""

    name: str
    version: str
    requested: bool = False
    source: str = ""
    origin: str = ""
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    installed_size: int = 0
    files: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, data: object) -> InstalledPackage:
        """A record from its JSON form; ValueError saying what is wrong otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"record of {name!r} is not an object")
        kinds = {"version": str, "requested": bool, "source": str, "origin": str, "installed_size": int}
        for key, kind in kinds.items():
            if key in data and not isinstance(data[key], kind):
                raise ValueError(f"{name}.{key} is not a {kind.__name__}")
        for key in ("depends", "provides", "files"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ValueError(f"{name}.{key} is not a list of strings")
        if "version" not in data:
            raise ValueError(f"{name}.version is missing")
        return cls(
            name=name,
            version=data["version"],
            requested=data.get("requested", False),
            source=data.get("source", ""),
            origin=data.get("origin", ""),
            depends=tuple(data.get("depends", [])),
            provides=tuple(data.get("provides", [])),
            installed_size=data.get("installed_size", 0),
            files=tuple(data.get("files", [])),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "source": self.source,
            "version": self.version,
            "origin": self.origin,
            "depends": list(self.depends),
            "provides": list(self.provides),
            "installed_size": self.installed_size,
            "files": list(self.files),
        }


def _parse_db(where: str, raw: bytes) -> dict[str, InstalledPackage]:
    try:
        data = untrusted_json(raw)
        if not isinstance(data, dict) or not isinstance(data.get("packages"), dict):
            raise ValueError('expected {"format": 1, "packages": {...}}')
        return {n: InstalledPackage.from_dict(n, r) for n, r in data["packages"].items()}
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadInput(
            f"{where}: not a pkgrepo database ({e}); restore it from a backup, or install into a new root"
        ) from None


def _db_bytes(packages: dict[str, InstalledPackage]) -> bytes:
    return canonical_json({"format": 1, "packages": {n: p.to_dict() for n, p in sorted(packages.items())}})


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


@dataclass
class _Plan:
    """What a transaction will do, in the order it does it; the journal is this, as JSON."""

    made: list[str] = field(default_factory=list)  # directories to create, parents first
    writes: list[tuple[str, str]] = field(default_factory=list)  # (temporary path, final path)
    unlink: list[str] = field(default_factory=list)
    packages: dict[str, InstalledPackage] = field(default_factory=dict)  # the database afterwards
    committed: bool = False

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "format": 1,
                "committed": self.committed,
                "made": self.made,
                "writes": self.writes,
                "unlink": self.unlink,
                "packages": {n: p.to_dict() for n, p in self.packages.items()},
            }
        )

    @classmethod
    def from_bytes(cls, where: str, raw: bytes) -> _Plan:
        try:
            d = untrusted_json(raw)
            return cls(
                made=[str(x) for x in d["made"]],
                writes=[(str(a), str(b)) for a, b in d["writes"]],
                unlink=[str(x) for x in d["unlink"]],
                committed=d["committed"] is True,
                packages=_parse_db(where, canonical_json({"packages": d["packages"]})),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(
                f"{where}: unreadable journal of an interrupted transaction ({e}); check the "
                "root's files against the database, then delete the journal"
            ) from None


class Rootfs:
    """An open, locked root filesystem. Create with `Rootfs.open(path)`."""

    def __init__(self, path: Path, root_fd: int):
        self.path = path
        self._fds: dict[str, int] = {"": root_fd}

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        path: Path,
        create: bool = False,
        lock_timeout: float = LOCK_TIMEOUT,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[Rootfs]:
        """Open and lock the root at `path` (created when `create`); recover an interrupted transaction."""
        fresh = create and not os.path.lexists(path)
        if create:
            try:
                path.mkdir(mode=0o755, parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise BadInput(
                    f"{path}: not a directory; pass a directory (or a new path) as the root"
                ) from None
            except OSError as e:
                raise PkgrepoError(f"{path}: cannot create the root: {e.strerror}") from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BadInput(f"{path}: no such root; install something into it first") from None
        except NotADirectoryError:
            raise BadInput(f"{path}: not a directory; pass a directory (or a new path) as the root") from None
        except OSError as e:
            raise PkgrepoError(f"{path}: cannot open the root: {e.strerror}") from None
        root = cls(path, fd)
        try:
            root._lock(lock_timeout, on_wait)
            with root._failures("finishing an interrupted transaction"):
                root._recover()
            yield root
        except BaseException:
            if fresh:
                with contextlib.suppress(OSError):
                    path.rmdir()  # a root this command created and left empty
            raise
        finally:
            root._close()

    @contextlib.contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise PkgrepoError(f"{self.path}: {doing} failed: {e}") from None

    def _lock(self, timeout: float, on_wait: Callable[[str], None] | None) -> None:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(self._fds[""], fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise PkgrepoError(
                    f"{self.path}: another pkgrepo command still holds this root after "
                    f"{timeout:.0f} s; wait for it to finish and try again"
                )
            if on_wait and not told:
                on_wait(f"{self.path}: waiting for another pkgrepo command to finish with this root")
                told = True
            time.sleep(0.05)

    def _close(self) -> None:
        for fd in self._fds.values():  # closing the root's descriptor releases the lock
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    # --- directories, never following a link ---------------------------------------------------

    def _dir(self, rel: str, create: bool = False) -> int | None:
        """A descriptor of directory `rel`, or None when it is missing (and not `create`d).

        BadInput when a component is a symlink or not a directory."""
        if rel in self._fds:
            return self._fds[rel]
        parent, name = _split(rel)
        pfd = self._dir(parent, create)
        if pfd is None:
            return None
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o755, dir_fd=pfd)
            fd = os.open(name, DIR_FLAGS, dir_fd=pfd)
            os.fchmod(fd, 0o755)  # whatever the umask
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise BadInput(
                f"{self.path}/{rel} is a symlink or not a directory; refusing to work "
                "through it (move it away, then try again)"
            ) from None
        self._fds[rel] = fd
        return fd

    def _lstat(self, rel: str) -> os.stat_result | None:
        parent, name = _split(rel)
        pfd = self._dir(parent)
        if pfd is None:
            return None
        try:
            return os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _read(self, rel: str) -> bytes | None:
        """A regular file's bytes, opened without following a link; None when missing."""
        parent, name = _split(rel)
        pfd = self._dir(parent)
        if pfd is None:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=pfd)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BadInput(
                f"{self.path}/{rel}: cannot open without following links ({e.strerror}); "
                "move it away, then try again"
            ) from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadInput(f"{self.path}/{rel} is not a regular file; move it away, then try again")
            return f.read()

    def _replace(self, rel: str, data: bytes, durable: bool = True) -> None:
        """Write `data` to `rel` atomically (temporary name, rename); `durable`: fsync the file
        before and its directory after the rename."""
        parent, name = _split(rel)
        dfd = self._dir(parent, create=True)
        tmp = name + NEW_SUFFIX
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd
        )
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        if durable:
            os.fsync(dfd)

    def _unlink(self, rel: str) -> None:
        """Unlink `rel` through its parent's descriptor; nothing when it or its parent is missing,
        a directory, or reachable only through a symlink."""
        parent, name = _split(rel)
        try:
            pfd = self._dir(parent)
        except BadInput:
            return  # its parent is now a symlink or a file: whatever it points at is not ours
        if pfd is None:
            return
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(name, dir_fd=pfd)

    # --- the database ----------------------------------------------------------------------------

    def installed(self) -> dict[str, InstalledPackage]:
        """What the root's database records, by name."""
        with self._failures("reading the database"):
            raw = self._read(DB)
        return {} if raw is None else _parse_db(f"{self.path}/{DB}", raw)

    # --- transactions ------------------------------------------------------------------------------

    def _recover(self) -> None:
        raw = self._read(f"{DB_DIR}/{JOURNAL}")
        if raw is None:
            return
        plan = _Plan.from_bytes(f"{self.path}/{DB_DIR}/{JOURNAL}", raw)
        if plan.committed:
            self._finish(plan)
        else:
            self._roll_back(plan)

    def _run(self, plan: _Plan, write: Callable[[], None]) -> None:
        """Carry out `plan`, whose new files `write` stages under their temporary names."""
        journal = f"{DB_DIR}/{JOURNAL}"
        try:
            # Not yet durable: kill -9 keeps it (the kernel has it), and the commit below is fsynced.
            self._replace(journal, plan.to_bytes(), durable=plan.committed)
            for rel in plan.made:
                self._dir(rel, create=True)
            write()
        except BaseException as e:
            with contextlib.suppress(OSError, BadInput):
                self._roll_back(plan)
            if isinstance(e, OSError):
                raise PkgrepoError(f"writing into {self.path} failed: {e}; nothing was changed") from None
            raise
        try:
            if not plan.committed:
                plan.committed = True
                self._replace(journal, plan.to_bytes())
            self._finish(plan)
        except OSError as e:
            raise PkgrepoError(
                f"writing into {self.path} failed: {e}; the next pkgrepo command on this "
                "root finishes the transaction"
            ) from None

    def _roll_back(self, plan: _Plan) -> None:
        for tmp, _final in plan.writes:
            self._unlink(tmp)
        self._unlink(f"{DB_DIR}/{JOURNAL}")
        for rel in reversed(plan.made):
            parent, name = _split(rel)
            with contextlib.suppress(OSError, BadInput):
                fd = self._fds.pop(rel, None)
                if fd is not None:
                    os.close(fd)
                pfd = self._dir(parent)
                if pfd is not None:
                    os.rmdir(name, dir_fd=pfd)

    def _finish(self, plan: _Plan) -> None:
        """Roll a committed plan forward; every step may already have been done."""
        for tmp, final in plan.writes:
            parent, name = _split(final)
            dfd = self._dir(parent)
            if dfd is not None and self._lstat(tmp) is not None:
                os.replace(_split(tmp)[1], name, src_dir_fd=dfd, dst_dir_fd=dfd)
        for rel in plan.unlink:
            self._unlink(rel)
        self._replace(DB, _db_bytes(plan.packages))
        self._unlink(
            f"{DB_DIR}/{JOURNAL}"
        )  # should this not reach the disk, rolling forward again is harmless

    def _plan_dirs(self, rel: str, plan: _Plan, planned: dict[str, bool]) -> bool:
        """Plan directory `rel` and its parents; whether it is still to be made. BadInput when
        one is a symlink or a file."""
        if rel == "":
            return False
        if rel not in planned:
            parent, _ = _split(rel)
            make = self._plan_dirs(parent, plan, planned) or self._dir(rel) is None
            if make:
                plan.made.append(rel)
            planned[rel] = make
        return planned[rel]

    def install(
        self,
        pkgs: list[CheckedPackage],
        requested: Iterable[str] = (),
        source: str = "",
        overwrite: bool = False,
    ) -> list[str]:
        """Install checked packages; return their names. `requested` names are recorded as asked
        for (upgrades resolve from them); `source` records where the packages came from. A file
        in the root that no package owns is refused unless `overwrite`."""
        with self._failures("installing"):
            self._install(pkgs, set(requested), source, overwrite)
        return [p.info.name for p in pkgs]

    def _install(self, pkgs: list[CheckedPackage], requested: set[str], source: str, overwrite: bool) -> None:
        db = self.installed()
        problems = list(_conflicts(pkgs, db))
        if problems:
            raise BadInput(
                f"file conflict: {problems[0]}"
                + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
            )
        _check_shapes(pkgs)
        new_db = dict(db)
        for p in pkgs:
            old = db.get(p.info.name)
            new_db[p.info.name] = InstalledPackage(
                name=p.info.name,
                version=p.info.full_version,
                source=source,
                origin=p.info.origin,
                requested=p.info.name in requested or bool(old and old.requested),
                depends=tuple(p.info.depends),
                provides=tuple(p.info.provides),
                installed_size=p.info.installed_size,
                files=tuple(sorted(e.path for e in p.manifest if e.type != "dir")),
            )
        owned = {f for rec in db.values() for f in rec.files}
        kept = {f for rec in new_db.values() for f in rec.files}
        plan = _Plan(packages=new_db)
        planned: dict[str, bool] = {}
        self._plan_dirs(DB_DIR, plan, planned)
        unowned: list[str] = []
        staged = []
        for p in pkgs:
            for m in p.members:
                if m.kind == "dir":
                    self._plan_dirs(m.path, plan, planned)
                    continue
                parent, _ = _split(m.path)
                st = None if self._plan_dirs(parent, plan, planned) else self._lstat(m.path)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise BadInput(
                        f"{p.info.name}: /{m.path} is a directory in the root; a package cannot replace it"
                    )
                if st is not None and m.path not in owned:
                    unowned.append(m.path)
                tmp = f"{parent}/{TMP_PREFIX}{len(plan.writes)}".lstrip("/")
                plan.writes.append((tmp, m.path))
                staged.append((p, m, tmp))
        if unowned and not overwrite:
            more = f" (+{len(unowned) - 1} more)" if len(unowned) > 1 else ""
            raise BadInput(
                f"{self.path}/{unowned[0]} is owned by no package{more}; move it away, or pass "
                "--overwrite to replace it"
            )
        plan.unlink = sorted(
            set().union(*(db[p.info.name].files for p in pkgs if p.info.name in db)) - kept, reverse=True
        )

        def write() -> None:
            for p, m, tmp in staged:
                parent, name = _split(tmp)
                dfd = self._dir(parent)
                if m.kind == "symlink":
                    with contextlib.suppress(
                        FileNotFoundError
                    ):  # left by a transaction lost with its journal
                        os.unlink(name, dir_fd=dfd)
                    os.symlink(m.linkpath or "", name, dir_fd=dfd)
                    continue
                with contextlib.suppress(FileNotFoundError):  # left by a transaction lost with its journal
                    os.unlink(name, dir_fd=dfd)
                fd = os.open(
                    name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=dfd,
                )
                try:
                    for block in p.chunks(m):
                        view = memoryview(block)
                        while view:
                            view = view[os.write(fd, view) :]
                    os.fchmod(fd, m.mode)
                finally:
                    os.close(fd)

        self._run(plan, write)

    def remove(self, names: Iterable[str]) -> list[str]:
        """Remove installed packages' files (not shared directories) and their records.

        Whether others still need them is the caller's policy (`pkgrepo.image.apply.remove`)."""
        names = list(names)
        with self._failures("removing"):
            self._remove(names)
        return names

    def _remove(self, names: list[str]) -> None:
        db = self.installed()
        missing = [n for n in names if n not in db]
        if missing:
            raise BadInput(f"{missing[0]}: not installed in {self.path}")
        remaining = {n: r for n, r in db.items() if n not in names}
        kept = {f for rec in remaining.values() for f in rec.files}
        gone = {f for n in names for f in db[n].files} - kept
        plan = _Plan(unlink=sorted(gone, reverse=True), packages=remaining, committed=True)
        self._run(plan, lambda: None)


def _check_shapes(pkgs: list[CheckedPackage]) -> None:
    """Refuse a transaction in which one path is a directory (named, or the parent of a member) and
    also a file or symlink, in one package or across several: whatever the archive order, the
    rename into place would fail after the commit and leave a journal no command could finish."""
    shapes: dict[str, tuple[str, str]] = {}  # path -> (kind, the package that gives it that kind)
    for p in pkgs:
        for m in p.members:
            parts = m.path.split("/")
            wanted = [("/".join(parts[:i]), "dir") for i in range(1, len(parts))]
            for path, kind in [*wanted, (m.path, "dir" if m.kind == "dir" else m.kind)]:
                seen = shapes.setdefault(path, (kind, p.info.name))
                if (seen[0] == "dir") != (kind == "dir"):
                    (k1, n1), (k2, n2) = sorted([seen, (kind, p.info.name)])
                    raise BadInput(
                        f"/{path} would be a {k1} ({n1}) and a {k2} ({n2}) at once; refusing the packages"
                    )


def _conflicts(pkgs: list[CheckedPackage], db: dict[str, InstalledPackage]) -> Iterator[str]:
    owners = {f: name for name, rec in db.items() for f in rec.files}
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
    pkgs: list[CheckedPackage],
    rootfs: Path,
    requested: Iterable[str] = (),
    source: str = "",
    overwrite: bool = False,
) -> list[str]:
    """`Rootfs.install` on `rootfs` (created when missing), for callers with a path in hand."""
    with Rootfs.open(rootfs, create=True) as root:
        return root.install(pkgs, requested, source, overwrite)


def installed_in(path: Path) -> dict[str, InstalledPackage]:
    """The database of the root at `path` (read under its lock, like any other command)."""
    with Rootfs.open(path) as root:
        return root.installed()
