"""What the catalogue learnt of a published package, remembered by the bytes it learnt it from.

Gathering a package's page values costs a provenance signature check and an advisory scan;
both depend only on the package's signed index entry, its signed provenance, the provenance
keys the repository publishes, the advisories and VEX statements, and the code that reads
them. A publish adds a package or two to a repository of many, so the results are kept in the
user's cache (`$PKGREPO_CACHE/web/learnt/KEY.json`) under the digest of
all of those, and every unchanged package is taken from there. A record that does not read
back as one is learnt again; a change to any input gives another key, never a stale answer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.attest.scan import Finding
from pkgrepo.errors import BadInput
from pkgrepo.safeio import read_regular, untrusted_json
from pkgrepo.web.matching import Status

KEPT = 4096  # records kept, newest used first: a few repositories of a few hundred packages
RECORD_BYTES = 16 * 2**20  # a record holds one package's findings: a few KiB
# The modules whose code decides what is learnt: another version of any of them, another key.
CODE = ("web/catalogue.py", "web/matching.py", "web/learnt.py", "attest/scan.py", "attest/vex.py",
        "attest/advisories.py", "attest/provenance.py", "attest/dsse.py")  # fmt: skip


@functools.cache
def code_digest() -> bytes:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for rel in CODE:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    return h.digest()


def key(*parts: str) -> str:
    """The record's name: the digest of the code and of `parts` (digests of every input)."""
    h = hashlib.sha256(code_digest())
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Learnt:
    provenance: dict  # the fields of catalogue.Provenanced, as JSON
    findings: list[Finding]
    statuses: dict[str, Status]

    def to_dict(self) -> dict:
        return {
            "provenance": self.provenance,
            "findings": [f.to_dict() for f in self.findings],
            "statuses": {k: s.to_dict() for k, s in sorted(self.statuses.items())},
        }

    @classmethod
    def from_dict(cls, data: object) -> Learnt:
        """A record read back; ValueError, TypeError or KeyError when it is not one (every
        value is of its field's type: the record goes into pages as it is read)."""
        if not isinstance(data, dict) or not isinstance(data["provenance"], dict):
            raise ValueError("not a record")
        if not isinstance(data["findings"], list) or not isinstance(data["statuses"], dict):
            raise ValueError("not a record")
        findings = []
        for f in data["findings"]:
            if not _text(f, "advisory", "severity", "package", "version", "status", "note", "fixed", "vex"):
                raise ValueError("not a finding")
            findings.append(Finding(**{**f, "vex": Path(f["vex"]) if f["vex"] is not None else None}))
        statuses = {}
        for k, s in data["statuses"].items():
            if not _text(s, "package", "version", "status", "note"):
                raise ValueError("not a status")
            statuses[k] = Status(**s)
        return cls(data["provenance"], findings, statuses)


def _text(record: object, *names: str) -> bool:
    """Is `record` an object whose `names` are strings (`fixed` and `vex`: or null)?"""
    return isinstance(record, dict) and all(
        isinstance(record[n], str) or (n in ("fixed", "vex") and record[n] is None) for n in names
    )


class Memory:
    """The records under `directory` (None: nothing is remembered)."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self.written = False

    def get(self, name: str) -> Learnt | None:
        if self.directory is None:
            return None
        path = self.directory / f"{name}.json"
        try:  # not followed if a link, never blocking on a FIFO, bounded
            found = Learnt.from_dict(untrusted_json(read_regular(path, "learnt record", RECORD_BYTES)))
        except (OSError, BadInput, ValueError, TypeError, KeyError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used: kept longer
        return found

    def put(self, name: str, learnt: Learnt) -> None:
        """Remember `learnt`; a cache that cannot be written is only slower."""
        if self.directory is None:
            return
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True)
            dest = self.directory / f"{name}.json"
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
            tmp.write_bytes(json.dumps(learnt.to_dict(), sort_keys=True, separators=(",", ":")).encode())
            os.replace(tmp, dest)
            self.written = True

    def prune(self) -> None:
        if self.directory is None or not self.written:
            return
        with contextlib.suppress(OSError):
            names = [n for n in os.listdir(self.directory) if n.endswith(".json")]
            if len(names) <= KEPT:
                return  # nothing to remove: no file's time asked
            paths = [self.directory / n for n in names]
            for old in sorted(paths, key=last_used, reverse=True)[KEPT:]:
                old.unlink(missing_ok=True)


def last_used(path: Path) -> float:
    """When `path` itself (a link is not followed) was last used; 0 when it is gone."""
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0
