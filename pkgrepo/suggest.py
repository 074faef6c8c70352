"""Near matches for a mistyped name: transpositions first, then difflib's closest."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, names: Iterable[str], n: int = 3) -> str:
    """`"; did you mean a, b?"`, or "" when nothing is close."""
    pool = list(dict.fromkeys(names))
    swapped = [c for c in pool if c != name and len(c) == len(name) and sorted(c) == sorted(name)]
    near = [*swapped, *difflib.get_close_matches(name, pool, n=n, cutoff=0.75)]
    near = list(dict.fromkeys(near))[:n]
    return f"; did you mean {', '.join(near)}?" if near else ""
