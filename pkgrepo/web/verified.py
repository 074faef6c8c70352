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
from a stale repository is the client's to refuse. A bin that signs no target (most of the
256 `repo init` writes at version 1, until packages hash into them) adds nothing to the view,
so its signature is not checked; a bin a publish signed (version 2 on) always is, or an empty
one with junk signatures would hide what it signed.

After `pkgrepo publish`, the bins that publish signed are handed over (`Vouched`): a bin whose
bytes on disk hash to one it wrote is taken as written, once one of them has been checked in
full (a publish signs every bin with the same keys). So are the index entries it wrote: where
the signed index is the one it wrote (its signed sha256, which the bytes read are checked
against), the line of a path it wrote is that entry's, taken instead of parsed again.

A publish changes a few hash bins of hundreds, so the bins verified before are remembered in
the user's cache (`$PKGREPO_CACHE/web/bins.json`): under the digest of the bin's bytes, the
delegation (keys and threshold) targets makes to it and the role, the version and the targets
the check found it vouches for (those that hash into it: not hashed again when taken).
A bin whose three digests are remembered is not parsed or checked again; any other byte, or
other delegating keys, and it is. Root, timestamp, snapshot and targets are checked every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import MetadataError
from pkgrepo.repo.index import HEADER, INDEX, IndexEntry, IndexLines, parse_index
from pkgrepo.repo.repository import Vouched
from pkgrepo.safeio import EVIDENCE_BYTES, read_regular, shown, untrusted_json


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
        signed = self.targets[target]
        try:  # never blocking on a FIFO, bounded by the signed length
            if path.stat().st_size != signed.length:
                raise tuf_errors.LengthOrHashMismatchError(path)
            data = read_regular(path, f"signed target {target}", signed.length, True)
            signed.verify_length_and_hashes(data)
        except OSError as e:
            raise BadInput(f"{path}: cannot read signed target {target} ({e.strerror})") from None
        except tuf_errors.LengthOrHashMismatchError:
            raise BadInput(f"{path}: not the bytes the metadata signs for {target}; it was altered") from None
        return data


def read_metadata(path: Path | str) -> bytes:
    """A metadata file's bytes: a FIFO or device in a hostile directory is refused, not waited
    on, and so is more than `EVIDENCE_BYTES`. `read_regular`'s checks and errors, reading to
    the size `fstat` gives rather than into a buffer of the limit (64 MiB allocated and freed
    for each of 260 files of a few hundred bytes was most of the verify phase). A copy of
    `read_regular` until that reads to the size too: it is build code, and changing it
    rebuilds every recipe."""
    what, limit = "repository metadata", EVIDENCE_BYTES
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise BadInput(
            f"{shown(path)}: cannot read {what}: {e.strerror}; replace it with a regular file"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(
                f"{shown(path)}: {what} is not a regular file (a FIFO, device or socket); remove it"
            )
        if st.st_size > limit:
            raise BadInput(f"{shown(path)}: {what} is {st.st_size} bytes, more than the limit of {limit}")
        chunks, size = [], 0
        while chunk := os.read(fd, max(st.st_size + 1 - size, 2**16)):  # to the end, however it grows
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise BadInput(
                    f"{shown(path)}: {what} grew past the limit of {limit} bytes while it was read"
                )
    finally:
        os.close(fd)
    return b"".join(chunks)


def _load(path: Path | str, data: bytes | None = None) -> Metadata:
    try:
        return Metadata.from_bytes(read_metadata(path) if data is None else data)
    except BadInput:
        raise
    except OSError as e:
        raise BadInput(
            f"{path}: cannot read repository metadata ({e.strerror}); is it a repository?"
        ) from None
    except Exception as e:  # python-tuf's deserialisation raises several kinds
        raise BadInput(f"{path}: not TUF metadata ({str(e).splitlines()[0] if str(e) else e!r})") from None


def _check(delegator: Root | Targets, role: str, md: Metadata, path: Path | str, version: int | None) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except tuf_errors.UnsignedMetadataError:
        raise BadInput(f"{path}: {role} is not signed by the keys its delegator names") from None
    if md.signed.type != ("targets" if role.startswith("bins") else role):
        raise BadInput(f"{path}: holds {md.signed.type} metadata, expected {role}")
    if version is not None and md.signed.version != version:
        raise BadInput(f"{path}: version {md.signed.version}, the metadata above records {version}")


# What the bins cache remembers of a bin: the targets it vouches for, those that hash into it
# (its token names the role and the delegation; earlier caches, holding all a bin signed, miss).
IN_RANGE = "in range"


def _in_range(signed: dict[str, TargetFile], role: str, succinct: SuccinctRoles) -> dict[str, TargetFile]:
    """What a bin vouches for of the targets it signs: only those that hash into it (the bytes of
    one bin, signed by the same key, can be put in another's place)."""
    return {t: tf for t, tf in signed.items() if succinct.get_role_for_target(t) == role}


def _signs_nothing(data: bytes) -> bool:
    """Is this metadata a targets role that signs no target and delegates nothing?"""
    try:
        signed = untrusted_json(data)["signed"]
        return signed["_type"] == "targets" and signed["targets"] == {} and "delegations" not in signed
    except (ValueError, TypeError, KeyError):
        return False  # checked in full, which names what is wrong


def _parse(index: bytes, handed: dict[str, IndexEntry]) -> list[IndexEntry]:
    """`parse_index`, taking the entry `handed` holds for a line's path (the index is the one
    the publish that handed them over wrote, so the line is that entry's)."""
    lines = index.rstrip(b"\n").split(b"\n")
    if not handed or lines[0] != HEADER:
        return parse_index(index)
    out = []
    for line in lines[1:]:
        path = IndexLines.PATH.search(line)
        entry = handed.get(path.group(1).decode(errors="replace")) if path is not None else None
        out.append(entry if entry is not None else IndexEntry.from_line(line))
    return out


class _Bins:
    """Bins verified before: token -> (version, targets as their JSON), read from `path`."""

    def __init__(self, path: Path | None):
        self.path = path
        self.known: dict[str, tuple[int, dict[str, Any]]] = {}
        self.used: dict[str, tuple[int, dict[str, Any]]] = {}
        if path is None:
            return
        with contextlib.suppress(OSError, BadInput, ValueError, TypeError, AttributeError):
            # not followed if a link, never blocking on a FIFO, bounded
            for token, (version, targets) in untrusted_json(read_regular(path, "bins cache")).items():
                if isinstance(version, int) and isinstance(targets, dict):
                    self.known[str(token)] = (version, targets)

    def targets(self, token: str, version: int) -> dict[str, TargetFile] | None:
        """The targets of the bin `token` names, when it was verified at `version` before."""
        found = self.known.get(token)
        if found is None or found[0] != version:
            return None
        try:
            out = {str(t): TargetFile.from_dict(dict(tf), str(t)) for t, tf in found[1].items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        self.used[token] = found
        return out

    def remember(self, token: str, version: int, targets: dict[str, TargetFile]) -> None:
        self.used[token] = (version, {t: tf.to_dict() for t, tf in targets.items()})

    def save(self) -> None:
        """Keep what this run used (the bins of the repository now); unwritable: only slower."""
        if self.path is None or self.used == self.known:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_bytes(json.dumps(self.used, sort_keys=True, separators=(",", ":")).encode())
            os.replace(tmp, self.path)


def verify(repo: Path, cache: Path | None = None, vouched: Vouched | None = None) -> Verified:
    """The verified targets and index of the repository at `repo` (BadInput naming what fails);
    `cache`: the file where bins verified before are remembered (none: every bin is checked);
    `vouched`: what the publish just before signed. A bin whose bytes hash to one it signed is
    taken as it signed it, once one of them verifies: one publish signs every bin with the
    same keys, so one bin checked shows those are the keys targets delegates to. The entries
    of the index it wrote are taken where the signed index is that one."""
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
    bins = _Bins(cache)
    empty: set[str] = set()  # digests of version-1 bins found to sign nothing
    signer_checked = False  # has a bin been checked in full (the keys publish signed with)?
    # what a bin's check depends on: the keys and threshold targets delegates with (targets
    # itself is signed anew at every publish, its delegations change only with the keys)
    delegator = hashlib.sha256(
        json.dumps(delegations.to_dict() if delegations else None, sort_keys=True).encode()
    ).hexdigest()
    for name, info in sorted(snap.signed.meta.items()):
        role = name.removesuffix(".json")
        if role == "targets":
            continue
        if succinct is None or not succinct.is_delegated_role(role):
            raise BadInput(f"{snap_path}: lists {name}, which targets does not delegate")
        path = f"{meta}/{info.version}.{name}"
        try:
            data = read_metadata(path)
        except OSError as e:
            raise BadInput(
                f"{path}: cannot read repository metadata ({e.strerror}); is it a repository?"
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        token = hashlib.sha256(f"{delegator} {role} {digest} {IN_RANGE}".encode()).hexdigest()
        signed = bins.targets(token, info.version)
        known = vouched.bins.get(digest) if vouched is not None and signer_checked else None
        if signed is None and known is not None and known[0] == info.version:
            signed = _in_range(known[1], role, succinct)
            bins.remember(token, info.version, signed)
        if signed is None and info.version == 1 and (digest in empty or _signs_nothing(data)):
            empty.add(digest)  # `repo init` writes its bins alike: one parse for them all
            continue  # a bin `repo init` wrote (a publish signs version 2 on): nothing to check
        if signed is None:
            md = _load(path, data)
            _check(top.signed, role, md, path, info.version)
            signed = _in_range(md.signed.targets, role, succinct)
            bins.remember(token, info.version, signed)
            signer_checked = signer_checked or (vouched is not None and digest in vouched.bins)
        targets.update(signed)
    bins.save()
    found = Verified(repo, targets, [], ts.signed.version)
    if INDEX not in targets:
        index, handed = HEADER + b"\n", {}
    else:  # the entries publish wrote, where the signed index is the one it wrote
        index = found.read(INDEX)
        handed = vouched.entries.get(targets[INDEX].hashes["sha256"], {}) if vouched is not None else {}
    try:
        entries = _parse(index, handed)
    except MetadataError as e:
        raise BadInput(f"{repo}: the signed index is not valid ({e})") from None
    return Verified(repo, targets, entries, ts.signed.version)
