"""The repository as its own signed metadata vouches for it, read from its directory.

The site shows only what the metadata signs, so it is generated from a
verified view, not from the files lying in the directory: starting from the
repository's first root (`metadata/1.root.json`, the anchor clients start
from), every later root must be signed by the keys of the one before it and by
its own; timestamp, snapshot, targets and each hash bin must be signed by the
keys their delegator names, at the versions the level above records. A target
is read from `targets/` and its length and sha256 checked against its signed
`TargetFile` before anything parses it. A package file on disk that no bin
signs is not in this view.

Expiry is not checked: the catalogue describes what was signed; installing
from a stale repository is the client's to refuse.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Snapshot, TargetFile, Targets, Timestamp

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import MetadataError
from pkgrepo.repo.index import HEADER, INDEX, IndexEntry, parse_index


@dataclass(frozen=True)
class Verified:
    """Every signed target of a repository (path -> TargetFile) and its verified index."""

    root: Path
    targets: dict[str, TargetFile]
    entries: list[IndexEntry]
    timestamp_version: int

    def target_path(self, target: str) -> str:
        """Where a consistent-snapshot target lies, relative to the repository directory."""
        directory, name = posixpath.split(target)
        return posixpath.join("targets", directory, f"{self.targets[target].hashes['sha256']}.{name}")

    def local(self, target: str) -> Path:
        return self.root / self.target_path(target)

    def read(self, target: str) -> bytes:
        """The bytes of a signed target; BadInput when they are not the signed ones."""
        path = self.local(target)
        try:
            data = path.read_bytes()
            self.targets[target].verify_length_and_hashes(data)
        except OSError as e:
            raise BadInput(f"{path}: cannot read signed target {target} ({e.strerror})") from None
        except tuf_errors.LengthOrHashMismatchError:
            raise BadInput(f"{path}: not the bytes the metadata signs for {target}; it was altered") from None
        return data


def _load(path: Path) -> Metadata:
    try:
        return Metadata.from_bytes(path.read_bytes())
    except OSError as e:
        raise BadInput(
            f"{path}: cannot read repository metadata ({e.strerror}); is it a repository?"
        ) from None
    except Exception as e:  # python-tuf's deserialisation raises several kinds
        raise BadInput(f"{path}: not TUF metadata ({str(e).splitlines()[0] if str(e) else e!r})") from None


def _check(delegator: Root | Targets, role: str, md: Metadata, path: Path, version: int | None) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except tuf_errors.UnsignedMetadataError:
        raise BadInput(f"{path}: {role} is not signed by the keys its delegator names") from None
    if md.signed.type != ("targets" if role.startswith("bins") else role):
        raise BadInput(f"{path}: holds {md.signed.type} metadata, expected {role}")
    if version is not None and md.signed.version != version:
        raise BadInput(f"{path}: version {md.signed.version}, the metadata above records {version}")


def verify(repo: Path) -> Verified:
    """The verified targets and index of the repository at `repo` (BadInput naming what fails)."""
    meta = repo / "metadata"
    root_path = meta / "1.root.json"
    root: Metadata[Root] = _load(root_path)
    _check(root.signed, "root", root, root_path, 1)
    while (meta / f"{root.signed.version + 1}.root.json").exists():
        path = meta / f"{root.signed.version + 1}.root.json"
        new = _load(path)
        _check(root.signed, "root", new, path, root.signed.version + 1)
        _check(new.signed, "root", new, path, None)
        root = new
    ts_path = meta / "timestamp.json"
    ts: Metadata[Timestamp] = _load(ts_path)
    _check(root.signed, "timestamp", ts, ts_path, None)
    snap_path = meta / f"{ts.signed.snapshot_meta.version}.snapshot.json"
    snap: Metadata[Snapshot] = _load(snap_path)
    _check(root.signed, "snapshot", snap, snap_path, ts.signed.snapshot_meta.version)
    top_path = meta / f"{snap.signed.meta['targets.json'].version}.targets.json"
    top: Metadata[Targets] = _load(top_path)
    _check(root.signed, "targets", top, top_path, snap.signed.meta["targets.json"].version)
    targets = dict(top.signed.targets)
    delegations = top.signed.delegations
    succinct = delegations.succinct_roles if delegations else None
    for name, info in sorted(snap.signed.meta.items()):
        role = name.removesuffix(".json")
        if role == "targets":
            continue
        if succinct is None or not succinct.is_delegated_role(role):
            raise BadInput(f"{snap_path}: lists {name}, which targets does not delegate")
        path = meta / f"{info.version}.{name}"
        md = _load(path)
        _check(top.signed, role, md, path, info.version)
        # a bin vouches only for the targets that hash into it
        targets.update(
            (t, tf) for t, tf in md.signed.targets.items() if succinct.get_role_for_target(t) == role
        )
    found = Verified(repo, targets, [], ts.signed.version)
    index = found.read(INDEX) if INDEX in targets else HEADER + b"\n"
    try:
        entries = parse_index(index)
    except MetadataError as e:
        raise BadInput(f"{repo}: the signed index is not valid ({e})") from None
    return Verified(repo, targets, entries, ts.signed.version)
