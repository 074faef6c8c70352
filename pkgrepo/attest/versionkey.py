"""`pkgrepo.resolve.version.compare` as a sort key, computed once per version string.

Matching advisories compares each package's version with the bounds of every advisory filed
under it, and each comparison re-parses both strings (a few microseconds each: most of a site
generation's advisory matching). `version_key(a) < version_key(b)` exactly when
`compare(a, b) < 0`, and equal keys exactly when it is 0 (tested against `compare`), so the
parse is done once per string and each comparison is a tuple comparison.

A part (upstream or revision) is Debian's alternation of non-digit and digit runs. Each run
pair is flattened into its characters' orders, a 0 ending the string (no character orders
as 0: `~` is -1, letters and others positive, digits never occur in a non-digit run) and the
number as (length without leading zeros, digits); a final 0 ends the part. Where one part
ends before the other, Debian compares the rest with an empty run pair: the next element of
the longer one is a run's first character order (every run after the first starts with a
non-digit), which the final 0 orders exactly like that empty pair does. The first run pair
is always written, even when empty, so the final 0 is never compared with it.
"""

from __future__ import annotations

from functools import lru_cache

from pkgrepo.resolve.version import _PART, _number, _order, _split

Key = tuple[tuple[int, str], tuple[int | str, ...], tuple[int | str, ...]]


@lru_cache(maxsize=1 << 16)
def version_key(version: str) -> Key:
    """The sort key of `version` in pkgrepo's (Debian's) version order."""
    epoch, upstream, revision = _split(version)
    return epoch, _part_key(upstream), _part_key(revision)


def _part_key(part: str) -> tuple[int | str, ...]:
    out: list[int | str] = []
    while True:
        m = _PART.match(part)
        assert m is not None  # (\D*)(\d*) matches every string
        out += [*map(_order, m.group(1)), 0, *_number(m.group(2))]
        part = part[m.end() :]
        if not part:
            return (*out, 0)
