"""Reading a file someone else wrote: no-follow, regular files only, bounded size and depth.

Evidence (provenance envelopes, SBOMs, public keys), advisories, VEX documents and build
cache entries come from directories an attacker may write to. Each is opened with
`O_NOFOLLOW | O_NONBLOCK` (a symlink is refused, a FIFO never blocks the open), checked
with `fstat` to be a regular file (FIFOs, sockets and devices are refused), and read up to
a byte limit. JSON is parsed with a nesting limit, so a document of a million `[` is one
line of bad input instead of a RecursionError, and no later walk over it recurses deeply.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import unicodedata
from pathlib import Path
from typing import Any

from pkgrepo.errors import BadInput

EVIDENCE_BYTES = 64 * 2**20  # an SBOM of a large package is well under 1 MiB
JSON_DEPTH = 64  # the deepest document pkgrepo writes or reads (OpenVEX, SPDX, SLSA) is under 12


def control_character(value: str) -> str | None:
    """The first character of `value` that ends or bends a line (category Cc, Zl or Zp), if any."""
    return next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)


def shown(path: Path | str) -> str:
    """A path as an error line shows it: as is, or quoted and escaped when it holds a newline or
    another control character (a file name must not add a line to pkgrepo's output)."""
    text = str(path)
    return text if control_character(text) is None else repr(text)


def read_regular(path: Path, what: str, limit: int = EVIDENCE_BYTES, follow: bool = False) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes opened without following a
    link at its last component (unless `follow`: the user's own input files, such as an image
    spec, may be links). `FileNotFoundError` passes through (callers decide whether a missing
    file is a miss or an error); anything else is `BadInput` naming the file and `what`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        reason = "a symbolic link" if e.errno == errno.ELOOP else e.strerror
        raise BadInput(
            f"{shown(path)}: cannot read {what}: {reason}; replace it with a regular file"
        ) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(
                f"{shown(path)}: {what} is not a regular file (a FIFO, device or socket); remove it"
            )
        if st.st_size > limit:
            raise BadInput(f"{shown(path)}: {what} is {st.st_size} bytes, more than the limit of {limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadInput(f"{shown(path)}: {what} grew past the limit of {limit} bytes while it was read")
    return data


def _depth(data: Any, limit: int) -> bool:
    """True when `data` nests no deeper than `limit` (iterative: no recursion of its own)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            stack += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return True


class HostileJSON(ValueError):
    """JSON text nested deeper or larger than a reader of untrusted JSON accepts."""


def untrusted_json(data: bytes | str, depth: int = JSON_DEPTH, limit: int = EVIDENCE_BYTES) -> Any:
    """`json.loads` for text someone else wrote: at most `limit` bytes (characters for a str) and
    `depth` levels of nesting. Every failure is a `ValueError` (`HostileJSON` for the bounds,
    `JSONDecodeError` or `UnicodeDecodeError` otherwise), never a RecursionError, so callers
    that already turn a ValueError into one line of bad input need nothing more."""
    if len(data) > limit:
        raise HostileJSON(f"is {len(data)} bytes, more than the limit of {limit}")
    try:
        value = json.loads(data)
    except RecursionError:
        raise HostileJSON(f"nests deeper than {depth} levels; refused as hostile") from None
    if not _depth(value, depth):
        raise HostileJSON(f"nests deeper than {depth} levels; refused as hostile")
    return value


def parse_json(data: bytes | str, where: Path | str, what: str, depth: int = JSON_DEPTH) -> Any:
    """JSON text as Python data; `BadInput` naming `where` when it is not JSON, nests deeper than
    `depth` or is larger than `EVIDENCE_BYTES`."""
    try:
        return untrusted_json(data, depth)
    except HostileJSON as e:
        raise BadInput(f"{shown(where)}: {what} {e}") from None
    except ValueError as e:
        raise BadInput(f"{shown(where)}: {what} is not JSON ({e}); fix or remove it") from None


def load_json(path: Path, what: str, limit: int = EVIDENCE_BYTES) -> Any:
    """`read_regular` then `parse_json`."""
    return parse_json(read_regular(path, what, limit), path, what)
