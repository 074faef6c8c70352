"""What the catalogue learnt of each package's provenance, remembered by the bytes it learnt it from.

A package's provenance state costs a signature check (most of a first generation's work once
advisories are matched from parsed bounds: matching every package again costs less than reading
its findings back, so it is not remembered). The state depends only on the package's signed
sha256, its provenance's target path and signed sha256, the provenance keys the repository
publishes, and the code that reads them. A publish adds a package or two to a repository of
many, so the states are kept in the user's cache under the digest of all of those, and every
unchanged package's is taken from there.

The records are one file (`$PKGREPO_CACHE/web/learnt.json`, beside `bins.json`), read once and
written once, only when a generation learnt something: the records it used first, then the
others it read, up to `KEPT` (a few repositories of a few hundred packages), so the file does
not grow without bound. Two generations sharing the cache (two repositories) may each write
what it read and learnt: the last writer wins, and the other learns its new records again next
time, slower, never wrong (a record is named by the digest of its inputs). A file that is not
one (a link, a FIFO, junk, over its bound) is read as empty, and a record that is not of its
types is learnt again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pkgrepo.errors import BadInput
from pkgrepo.safeio import read_regular, untrusted_json

FILE = "learnt.json"
KEPT = 4096  # records kept, those used last first
FILE_BYTES = 16 * 2**20  # a record is a few hundred bytes
# The modules whose code decides what is learnt: another version of any of them, another key.
CODE = ("web/catalogue.py", "web/learnt.py", "attest/provenance.py", "attest/dsse.py")

T = TypeVar("T")


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


class Memory:
    """The records of the file `path` (None: nothing is remembered)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.read: dict[str, Any] = self._load()
        self.used: dict[str, Any] = {}
        self.learnt = False

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:  # not followed if a link, never blocking on a FIFO, bounded
            records = untrusted_json(read_regular(self.path, "learnt records", FILE_BYTES))
        except (OSError, BadInput, ValueError):
            return {}
        return records if isinstance(records, dict) else {}

    def get(self, name: str, parse: Callable[[Any], T]) -> T | None:
        """The record `name` as `parse` reads it; None when there is none, or `parse` finds it is
        not one (TypeError, KeyError or ValueError)."""
        record = self.read.get(name)
        if record is None:
            return None
        try:
            found = parse(record)
        except (TypeError, KeyError, ValueError):
            return None
        self.used[name] = record
        return found

    def put(self, name: str, record: dict[str, Any]) -> None:
        self.used[name] = record
        self.learnt = True

    def save(self) -> None:
        """Write the records used, then the others read, when something was learnt; a cache that
        cannot be written is only slower."""
        if self.path is None or not self.learnt:
            return
        kept = dict(self.used)
        for name, record in self.read.items():
            if len(kept) >= KEPT:
                break
            kept.setdefault(name, record)
        data = json.dumps(kept, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
            except OSError:
                os.unlink(tmp)
                raise
