"""The repository index: one typed entry per published package, as sorted JSON lines.

`index.jsonl` is a header line, then one canonical JSON line per package,
sorted by path: the package's metadata plus where it is (`path`) and what
its bytes are (`sha256`, `size`). Publishing merges new lines by binary
search without parsing the others (`IndexLines`); readers parse every line
into an `IndexEntry` (`parse_index`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import MetadataError, PackageInfo, canonical_json
from pkgrepo.safeio import untrusted_json

INDEX = "index.jsonl"
HEADER = b'{"format":1}'
LOCATION = ("path", "sha256", "size")


@dataclass(frozen=True)
class IndexEntry:
    info: PackageInfo
    path: str  # the target path, `packages/<file name>`
    sha256: str
    size: int

    @classmethod
    def from_dict(cls, data: object) -> IndexEntry:
        if not isinstance(data, dict):
            raise MetadataError("an entry is not an object")
        where = {k: data.get(k) for k in LOCATION}
        if not isinstance(where["path"], str) or not isinstance(where["sha256"], str):
            raise MetadataError("an entry has no path or sha256")
        if not isinstance(where["size"], int) or isinstance(where["size"], bool) or where["size"] < 0:
            raise MetadataError(f"{where['path']}: size is not a byte count")
        info = PackageInfo.from_dict({k: v for k, v in data.items() if k not in LOCATION})
        return cls(info, where["path"], where["sha256"], where["size"])

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_line(cls, line: bytes) -> IndexEntry:
        try:
            value = untrusted_json(line)
        except ValueError as e:
            raise MetadataError(f"a line is not JSON ({e})") from None
        return cls.from_dict(value)

    def to_line(self) -> bytes:
        return canonical_json(self.to_dict()).rstrip(b"\n")

    @property
    def name(self) -> str:
        return self.info.name


def parse_index(data: bytes) -> list[IndexEntry]:
    """Every entry of an index file; `MetadataError` naming the first bad one."""
    lines = data.rstrip(b"\n").split(b"\n")
    if lines[0] != HEADER:
        raise MetadataError(f"unknown index format {lines[0][:40]!r}")
    return [IndexEntry.from_line(line) for line in lines[1:]]


class IndexLines:
    """The index as lines sorted by path; a lookup parses only the lines a binary search probes."""

    PATH = re.compile(rb'"path":"((?:[^"\\]|\\.)*)"')

    def __init__(self, data: bytes):
        lines = data.rstrip(b"\n").split(b"\n")
        if lines[0] != HEADER:
            raise BadInput(f"index: unknown format {lines[0][:40]!r}")
        self.lines = lines[1:]

    @classmethod
    def _path(cls, line: bytes) -> str:
        m = cls.PATH.search(line)
        if m is None:
            raise BadInput("index: an entry has no path; the repository index is corrupt")
        return m.group(1).decode()

    def _find(self, path: str) -> tuple[int, bool]:
        i = bisect.bisect_left(self.lines, path, key=self._path)
        return i, i < len(self.lines) and self._path(self.lines[i]) == path

    def get(self, path: str) -> IndexEntry | None:
        i, found = self._find(path)
        if not found:
            return None
        try:
            return IndexEntry.from_line(self.lines[i])
        except MetadataError as e:
            raise BadInput(f"index: {path}: {e}; the repository index is corrupt") from None

    def put(self, entry: IndexEntry) -> None:
        i, found = self._find(entry.path)
        if found:
            self.lines[i] = entry.to_line()
        else:
            self.lines.insert(i, entry.to_line())

    def to_bytes(self) -> bytes:
        return b"\n".join([HEADER, *self.lines]) + b"\n"


def matching(entries: list[IndexEntry], pattern: str) -> list[IndexEntry]:
    """Entries whose name or description contains `pattern`, ignoring case."""
    p = pattern.lower()
    return [e for e in entries if p in e.name.lower() or p in e.info.description.lower()]


def named(entries: list[IndexEntry], name: str) -> list[IndexEntry]:
    """Every version of `name`; BadInput with a suggestion when there is none."""
    from pkgrepo.suggest import suggest

    found = [e for e in entries if e.name == name]
    if not found:
        raise BadInput(f"{name}: not in the repository{suggest(name, [e.name for e in entries])}")
    return found
