"""A TUF repository of packages, built with python-tuf's Metadata API.

Layout (static files; any HTTP server can serve it):

    metadata/root.json, N.root.json      root, every version kept (clients walk the chain)
    metadata/timestamp.json              the only file ever replaced: the commit point
    metadata/N.snapshot.json             consistent snapshots: each version a new file
    metadata/N.targets.json              signs the index, delegates packages to hash bins
    metadata/N.bins-XX.json              256 succinct hash bins (TAP 15) sign the packages
    targets/HASH.index.jsonl             the package index: a header line, then one canonical
                                         JSON object per package, sorted by path
    targets/packages/HASH.FILENAME       the packages, content-addressed

A publish writes every new file first under a name no reader can be using
yet, and replaces `timestamp.json` last with an atomic rename: a reader sees
the old repository or the new one, never a mixture. Publishes are serialised
by an exclusive lock on `.lock`. Publishing one package touches one bin, the
index and the top-level metadata, whatever the size of the repository; no
other package file is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import posixpath
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import Signer
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import FileEntry, PackageInfo
from pkgrepo.repo.index import HEADER, INDEX, IndexEntry, IndexLines
from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.roles import ROLES, TOP_ROLES
from pkgrepo.safeio import read_regular

BIN_BITS = 8
BIN_PREFIX = "bins"
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "bins": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
SERIALIZER = JSONSerializer(compact=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_atomic(path: Path, data: bytes) -> None:
    """`data` at `path`, synced, or nothing: a write that fails (a full disk) removes its
    temporary file, which no publish would ever remove and which would keep the disk full,
    and its error names the file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from None  # a write's error names no file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _holds(path: Path, data: bytes) -> bool:
    """Is `path` a regular file (not a link) of exactly `data`? A file at a target's name that
    is not (left by a crash, planted, a link elsewhere) is written over, so that every target
    a publish signs is its signed bytes once it returns (read without following a link or
    waiting on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        return stat.S_ISREG(st.st_mode) and st.st_size == len(data) and f.read(len(data) + 1) == data


def _read_package(path: Path) -> tuple[str, bytes, tuple[PackageInfo, list[FileEntry]]]:
    """The sha256 and bytes of a package file and its head (metadata and manifest), all three
    of the one read of its bytes (the path may be renamed over meanwhile); BadInput when it is
    not a regular file (a FIFO would block the publish, lock held)."""
    from pkgrepo.package.archive import read_head  # libarchive: only publishing reads packages

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise BadInput(f"{path}: cannot read package: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path}: not a regular file (a FIFO, device or socket); publish a package file")
        try:
            data = f.read()  # read once: hashed, copied and its head read
        except OSError as e:
            raise BadInput(f"{path}: cannot read package: {e.strerror}") from None
    return hashlib.sha256(data).hexdigest(), data, read_head(path, data)


def _read_sidecar(path: Path) -> bytes:
    """An evidence file's bytes (the publisher's own: no bound but its size when listed); a FIFO
    is refused, not blocked on with the lock held."""
    try:
        return read_regular(path, "evidence file", path.stat().st_size, follow=True)
    except FileNotFoundError:
        raise BadInput(f"{path}: evidence file removed while it was being published; publish again") from None


# Files published beside packages (SBOMs, provenance): (target path, file) for the given packages.
Sidecars = Callable[[list[Path]], list[tuple[str, Path]]]


@dataclass
class Vouched:
    """What a publish read and signed, handed to the web catalogue so that it does not read it
    again (the manifests are most of a first generation's work): each package's head by the
    sha256 of the bytes it was read from, each hash bin signed by the sha256 of the bytes
    written, and the index entries it wrote, under the sha256 of the index written, each by
    its target path (as a reader of its line parses it back: `as_read`). A consumer still
    reads the repository's files and uses an item only where the bytes it finds hash to that
    key."""

    heads: dict[str, tuple[PackageInfo, list[FileEntry]]] = field(default_factory=dict)
    bins: dict[str, tuple[int, dict[str, TargetFile]]] = field(default_factory=dict)
    entries: dict[str, dict[str, IndexEntry]] = field(default_factory=dict)


def as_read(entry: IndexEntry) -> IndexEntry:
    """`entry` as `IndexEntry.from_line` parses its index line back: the optional fields its
    line leaves out when empty read as their defaults (an upstream of "" as None)."""
    info = entry.info
    defaults = {
        f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(info)
        if f.name in info.OPTIONAL and not getattr(info, f.name)
    }
    changed = {k: v for k, v in defaults.items() if getattr(info, k) != v}
    return dataclasses.replace(entry, info=info.replace(**changed)) if changed else entry


@dataclass(frozen=True)
class Preview:
    """What a publish is about to sign, told once the package files are written and every
    other target read (the site renders ahead from it: `pkgrepo.web.ahead`): every target of
    the hash bins it signs anew and of targets (the index among them), the version of the
    timestamp that will commit them, the package heads it read (`Vouched.heads`), and the
    bytes of the targets it is still to write (evidence and the index: a few KiB each)."""

    targets: dict[str, TargetFile]
    timestamp_version: int
    heads: dict[str, tuple[PackageInfo, list[FileEntry]]]
    contents: dict[str, bytes]


@dataclass
class PublishReport:
    added: list[str]
    unchanged: list[str]
    version: int
    vouched: Vouched = field(default_factory=Vouched)


class Repository:
    @classmethod
    def at(cls, root: Path, keys_dir: Path | None = None) -> Repository:
        """The repository at `root` with its keys in `keys_dir` or their default place."""
        from pkgrepo.repo.keys import default_keys_dir

        return cls(root, KeyStore(keys_dir or default_keys_dir(root)))

    def __init__(self, root: Path, keys: KeyStore):
        self.root = Path(root)
        self.keys = keys
        self.meta = self.root / "metadata"
        self.targets_dir = self.root / "targets"

    # --- reading the current state ------------------------------------------------------------

    def _read(self, name: str, version: int | None = None) -> Metadata:
        path = self.meta / (f"{version}.{name}.json" if version is not None else f"{name}.json")
        try:
            return Metadata.from_bytes(path.read_bytes())
        except OSError as e:
            raise BadInput(
                f"{path}: cannot read repository metadata ({e.strerror}); is {self.root} a repository?"
            ) from None

    def timestamp(self) -> Metadata[Timestamp]:
        return self._read("timestamp")

    def snapshot(self, ts: Metadata[Timestamp] | None = None) -> Metadata[Snapshot]:
        ts = ts or self.timestamp()
        return self._read("snapshot", ts.signed.snapshot_meta.version)

    def role(self, snap: Metadata[Snapshot], name: str) -> Metadata:
        return self._read(name, snap.signed.meta[f"{name}.json"].version)

    def current_root(self) -> Metadata[Root]:
        return self._read("root")

    def index_bytes(self, targets: Metadata[Targets] | None = None) -> bytes:
        targets = targets or self.role(self.snapshot(), "targets")
        info = targets.signed.targets.get(INDEX)
        if info is None:
            return HEADER + b"\n"
        return (self.targets_dir / f"{info.hashes['sha256']}.{INDEX}").read_bytes()

    # --- writing ------------------------------------------------------------------------------

    def _sign_write(
        self,
        md: Metadata,
        name: str,
        signer_roles: tuple[str, ...],
        expiry: timedelta,
        signers: list[Signer] | None = None,
    ) -> bytes:
        """Set the expiry, sign with the roles' keys (or the given signers), write the file;
        the bytes written."""
        md.signed.expires = _now() + expiry
        md.signatures.clear()
        for signer in signers or [self.keys.load(role) for role in signer_roles]:
            md.sign(signer, append=True)
        data = md.to_bytes(SERIALIZER)
        if name == "timestamp":
            _write_atomic(self.meta / "timestamp.json", data)
        else:
            _write_atomic(self.meta / f"{md.signed.version}.{name}.json", data)
            if name == "root":
                _write_atomic(self.meta / "root.json", data)
        return data

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def init(self, expiry: dict[str, timedelta] | None = None) -> None:
        expiry = {**EXPIRY, **(expiry or {})}
        if (self.meta / "timestamp.json").exists():
            raise BadInput(f"{self.root}: already a repository; use `pkgrepo repo rotate` to change keys")
        with self.lock():
            self.meta.mkdir(parents=True, exist_ok=True)
            (self.targets_dir / "packages").mkdir(parents=True, exist_ok=True)
            signers = {role: self.keys.generate(role) for role in ROLES}
            root = Root(consistent_snapshot=True)
            for role in TOP_ROLES:
                root.add_key(signers[role].public_key, role)
            bins_key = signers["bins"].public_key
            succinct = SuccinctRoles([bins_key.keyid], 1, BIN_BITS, BIN_PREFIX)
            targets = Targets(
                delegations=Delegations(keys={bins_key.keyid: bins_key}, succinct_roles=succinct)
            )
            snapshot = Snapshot(meta={"targets.json": MetaFile(1)})
            for name in succinct.get_roles():
                self._sign_write(Metadata(Targets()), name, ("bins",), expiry["bins"])
                snapshot.meta[f"{name}.json"] = MetaFile(1)
            self._sign_write(Metadata(root), "root", ("root",), expiry["root"])
            self._sign_write(Metadata(targets), "targets", ("targets",), expiry["targets"])
            self._sign_write(Metadata(snapshot), "snapshot", ("snapshot",), expiry["snapshot"])
            self._sign_write(
                Metadata(Timestamp(snapshot_meta=MetaFile(1))),
                "timestamp",
                ("timestamp",),
                expiry["timestamp"],
            )

    def publish(
        self,
        files: list[Path],
        force: bool = False,
        expiry: dict[str, timedelta] | None = None,
        sidecars: Sidecars = lambda _files: [],
        written: Callable[[Preview], object] | None = None,
    ) -> PublishReport:
        """Add `files` (and the files `sidecars` names beside them) in one atomic, signed step;
        `written` is told what will be signed once the package files are written (the evidence
        and the index are written after it, every target before any metadata names it)."""
        expiry = {**EXPIRY, **(expiry or {})}
        for f in files:
            if not f.is_file():
                raise BadInput(f"{f}: no such package file")
        with self.lock():
            ts = self.timestamp()
            snap = self.snapshot(ts)
            targets = self.role(snap, "targets")
            index = IndexLines(self.index_bytes(targets))
            succinct = targets.signed.delegations.succinct_roles
            bins: dict[str, Metadata[Targets]] = {}
            added, unchanged, vouched = [], [], Vouched()
            put: dict[str, IndexEntry] = {}  # the entries put in the index, by path
            for f in files:
                digest, data, head = _read_package(f)
                entry = IndexEntry(head[0], f"packages/{head[0].filename}", digest, len(data))
                vouched.heads[digest] = head
                old = index.get(entry.path)
                if old and old.sha256 == digest:
                    unchanged.append(entry.path)
                    continue
                if old and not force:
                    raise BadInput(
                        f"{f}: {entry.name} {entry.info.full_version} is already published with "
                        "different bytes; bump the recipe's release, or pass --force to replace it"
                    )
                self._store(entry.path, data, digest)  # durable before any metadata names it
                name = succinct.get_role_for_target(entry.path)
                if name not in bins:
                    bins[name] = self.role(snap, name)
                bins[name].signed.targets[entry.path] = TargetFile(len(data), {"sha256": digest}, entry.path)
                index.put(entry)
                put[entry.path] = entry
                added.append(entry.path)
            staged: dict[str, bytes] = {}  # evidence and index: written after `written` is told
            for target, path in sidecars(files):
                data = _read_sidecar(path)
                if self._add_target(target, data, snap, bins, succinct):
                    staged[target] = data
                    added.append(target)
            if not added:
                return PublishReport([], unchanged, ts.signed.version, vouched)
            index_bytes = index.to_bytes()
            index_digest = hashlib.sha256(index_bytes).hexdigest()
            staged[INDEX] = index_bytes
            vouched.entries[index_digest] = {path: as_read(e) for path, e in put.items()}
            targets.signed.targets[INDEX] = TargetFile(len(index_bytes), {"sha256": index_digest}, INDEX)
            if written is not None:
                signing = dict(targets.signed.targets)
                for name, md in bins.items():  # a bin vouches only for what hashes into it
                    signing.update(
                        (t, f)
                        for t, f in md.signed.targets.items()
                        if succinct.get_role_for_target(t) == name
                    )
                written(Preview(signing, ts.signed.version + 1, vouched.heads, staged))
            for target, data in staged.items():  # durable before any metadata names them
                self._store(target, data, hashlib.sha256(data).hexdigest())
            for name, md in sorted(bins.items()):
                md.signed.version += 1
                signed = self._sign_write(md, name, ("bins",), expiry["bins"])
                vouched.bins[hashlib.sha256(signed).hexdigest()] = (md.signed.version, md.signed.targets)
                snap.signed.meta[f"{name}.json"] = MetaFile(md.signed.version)
            targets.signed.version += 1
            self._sign_write(targets, "targets", ("targets",), expiry["targets"])
            snap.signed.meta["targets.json"] = MetaFile(targets.signed.version)
            self._commit(ts, snap, expiry)
            return PublishReport(added, unchanged, ts.signed.version, vouched)

    def _store(self, target: str, data: bytes, digest: str) -> None:
        """`data` (of sha256 `digest`) at `target`'s content-addressed name,
        `targets/DIR/SHA256.NAME`, synced, unless a regular file of exactly these bytes is
        already there (`_holds`)."""
        dest = self.targets_dir / posixpath.dirname(target) / f"{digest}.{posixpath.basename(target)}"
        if not _holds(dest, data):
            dest.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(dest, data)

    def _add_target(
        self,
        target: str,
        data: bytes,
        snap: Metadata[Snapshot],
        bins: dict[str, Metadata[Targets]],
        succinct: SuccinctRoles,
    ) -> bool:
        """`data` as `target` in its hash bin, unless already there with these bytes (the caller
        writes the file before the bin is signed)."""
        digest = hashlib.sha256(data).hexdigest()
        name = succinct.get_role_for_target(target)
        md = bins.get(name) or self.role(snap, name)
        old = md.signed.targets.get(target)
        if old is not None and old.hashes.get("sha256") == digest:
            return False
        md.signed.targets[target] = TargetFile(len(data), {"sha256": digest}, target)
        bins[name] = md
        return True

    def _commit(
        self, ts: Metadata[Timestamp], snap: Metadata[Snapshot], expiry: dict[str, timedelta]
    ) -> None:
        """New snapshot, then the new timestamp: the rename of timestamp.json is the commit."""
        snap.signed.version += 1
        self._sign_write(snap, "snapshot", ("snapshot",), expiry["snapshot"])
        ts.signed.snapshot_meta = MetaFile(snap.signed.version)
        ts.signed.version += 1
        self._sign_write(ts, "timestamp", ("timestamp",), expiry["timestamp"])

    def refresh(self, expiry: dict[str, timedelta] | None = None, targets_too: bool = False) -> int:
        """Re-sign snapshot and timestamp (and with `targets_too`, targets) with fresh expiry dates."""
        expiry = {**EXPIRY, **(expiry or {})}
        with self.lock():
            ts = self.timestamp()
            snap = self.snapshot(ts)
            if targets_too:
                self._resign_targets(snap, expiry)
            self._commit(ts, snap, expiry)
            return ts.signed.version

    def _resign_targets(self, snap: Metadata[Snapshot], expiry: dict[str, timedelta]) -> None:
        targets = self.role(snap, "targets")
        targets.signed.version += 1
        self._sign_write(targets, "targets", ("targets",), expiry["targets"])
        snap.signed.meta["targets.json"] = MetaFile(targets.signed.version)

    def rotate(self, role: str, expiry: dict[str, timedelta] | None = None) -> int:
        """Replace `role`'s key. A new root version, signed by the old and the new root keys as
        needed, tells clients; the role's metadata is re-signed with the new key."""
        expiry = {**EXPIRY, **(expiry or {})}
        if role not in TOP_ROLES:
            raise BadInput(f"{role}: can rotate root, targets, snapshot or timestamp")
        with self.lock():
            root = self.current_root()
            old_signer = self.keys.load(role)
            old_root_signer = self.keys.load("root")
            new_signer = self.keys.generate(role)
            try:
                root.signed.revoke_key(old_signer.public_key.keyid, role)
                root.signed.add_key(new_signer.public_key, role)
                root.signed.version += 1
                # for a root rotation the old root key vouches for the new one as well
                signers = [old_root_signer, new_signer] if role == "root" else [old_root_signer]
                self._sign_write(root, "root", (), expiry["root"], signers)
            except Exception:
                # keep the old key usable if the new root could not be written
                tmp = self.keys.path(role)
                _write_atomic(tmp, old_signer.private_bytes)
                os.chmod(tmp, 0o600)
                raise
            ts = self.timestamp()
            snap = self.snapshot(ts)
            if role == "targets":
                self._resign_targets(snap, expiry)
            self._commit(ts, snap, expiry)
            return root.signed.version

    def export_root(self, dest: Path) -> None:
        """The trust anchor clients start from (the first root version: clients walk the chain)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.meta / "1.root.json", dest)


def parse_expiry(values: tuple[str, ...]) -> dict[str, timedelta]:
    """`timestamp=1d`, `snapshot=12h`, `targets=30s` -> {role: timedelta}."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    out = {}
    for v in values:
        role, _, amount = v.partition("=")
        if role not in EXPIRY or not amount or amount[-1] not in units or not amount[:-1].isdigit():
            raise BadInput(f"--expiry {v!r}: expected ROLE=N[s|m|h|d] with ROLE one of {', '.join(EXPIRY)}")
        out[role] = timedelta(seconds=int(amount[:-1]) * units[amount[-1]])
    return out
