"""Version comparison with Debian's algorithm (epochs, `~` sorting first).

Native versions are written `[epoch:]upstream-rRELEASE`; the same algorithm
orders them and Debian's own versions, so one comparison serves both indexes.
"""

from __future__ import annotations

import re
from functools import cmp_to_key

_PART = re.compile(r"(\D*)(\d*)", re.ASCII)


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isascii() and c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_string(a: str, b: str) -> int:
    i = 0
    while i < len(a) or i < len(b):
        ca = _order(a[i]) if i < len(a) else 0
        cb = _order(b[i]) if i < len(b) else 0
        if ca != cb:
            return -1 if ca < cb else 1
        i += 1
    return 0


def _cmp_part(a: str, b: str) -> int:
    while a or b:
        ma, mb = _PART.match(a), _PART.match(b)
        assert ma and mb
        c = _cmp_string(ma.group(1), mb.group(1))
        if c:
            return c
        na, nb = _number(ma.group(2)), _number(mb.group(2))
        if na != nb:
            return -1 if na < nb else 1
        a, b = a[ma.end() :], b[mb.end() :]
    return 0


def _number(digits: str) -> tuple[int, str]:
    """A digit string as a sort key, without int(): any length, no conversion limit."""
    digits = digits.lstrip("0")
    return len(digits), digits


def _split(v: str) -> tuple[tuple[int, str], str, str]:
    epoch = _number("")
    if ":" in v:
        e, v = v.split(":", 1)
        epoch = _number(e) if e.isascii() and e.isdigit() else epoch
    upstream, _, revision = v.rpartition("-")
    if not upstream:
        upstream, revision = revision, ""
    return epoch, upstream, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` sorts before, equal to or after `b`."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


OPS = {
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    "<": lambda c: c < 0,
    ">>": lambda c: c > 0,
    "<<": lambda c: c < 0,
}


def satisfies(version: str, op: str, wanted: str) -> bool:
    return OPS[op](compare(version, wanted))


sort_key = cmp_to_key(compare)
