"""Which file under a served directory a request names, and which of its bytes to send.

Generic for any file under the root (repository metadata, packages, a web
catalogue): no directory listings, no dotfiles, nothing outside the root even
through a symlink; content types by suffix; strong ETags from size and mtime;
single byte ranges as RFC 9110 says (a last position past the end is clamped,
a suffix longer than the file is the whole file, a first position at or past
the end is unsatisfiable). A file whose name is versioned or content-addressed
(`metadata/N.*`, everything under `targets/`) never changes and is served
`immutable`; every other file (timestamp.json, root.json, web pages) `no-cache`,
so a client revalidates it with its ETag.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

TYPES = {
    ".json": "application/json",
    ".zst": "application/zstd",
    ".jsonl": "application/jsonl",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_DIGITS = 18  # a bound past 10**18 bytes is past the end of any file; int() of 5000 digits is not free
VERSIONED = re.compile(r"^\d+\.")


def resolve(base: Path, target: str) -> Path | None:
    """The regular file `target` (a request target) names under `base` (resolved), or None."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    parts = [p for p in path.split("/") if p]
    if "\0" in path or any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    try:
        full = (base / "/".join(parts)).resolve()
        if not full.is_relative_to(base) or not full.is_file():
            return None
    except (OSError, RuntimeError, ValueError):  # a name too long, a link loop: not a file we serve
        return None
    return full


def content_type(path: Path) -> str:
    return TYPES.get(path.suffix, "application/octet-stream")


def cache_control(base: Path, path: Path) -> str:
    rel = path.relative_to(base).parts
    fixed = rel[0] == "targets" or (rel[0] == "metadata" and VERSIONED.match(path.name) is not None)
    return "public, max-age=31536000, immutable" if fixed else "no-cache"


@dataclass(frozen=True)
class Span:
    """The bytes to send: [start, start+length); `partial` for a 206, None for a 416."""

    start: int
    length: int
    partial: bool


def span(size: int, header: str | None) -> Span | None:
    """The bytes a `Range` header asks for; the whole file when it asks for none we honour.

    A header that is not one `bytes=` range is ignored (200, as RFC 9110 allows); None
    means unsatisfiable (416)."""
    whole = Span(0, size, False)
    m = RANGE.match(header.strip()) if header else None
    if m is None or not (m.group(1) or m.group(2)):
        return whole
    first, last = m.group(1), m.group(2)
    if not first:  # a suffix: the last N bytes, the whole file when N is larger
        n = size if len(last) > MAX_DIGITS else min(int(last), size)
        return Span(size - n, n, True) if n > 0 else None
    if len(first) > MAX_DIGITS or int(first) >= size:
        return None
    start = int(first)
    end = size - 1 if not last or len(last) > MAX_DIGITS else min(int(last), size - 1)
    if end < start:
        return None
    return Span(start, end - start + 1, True)
