"""`version_key` orders versions exactly as `pkgrepo.resolve.version.compare` does: the
advisory matching and the web catalogue sort and compare with it instead."""

from __future__ import annotations

import random

from pkgrepo.attest.versionkey import version_key
from pkgrepo.resolve.version import compare

EDGES = ["", "0", "00", "0~", "~", "~~", "~1", "1", "01", "1.0", "1.00", "1~", "1~~", "1-", "-", ":",
         "0:1", "1:0", "a:1", ":1", "0.1", ".1", "1a", "1.a", "1+b", "1-r0", "1-r01", "1.2.3-r4",
         "1:1.2-3-4", "1.2é", "1.2٣"]  # fmt: skip


def _sign(a: str, b: str) -> int:
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def test_the_key_orders_as_compare_does():
    rng = random.Random(18)
    alphabet = "0019a.~+-:Zé٣"
    versions = EDGES + ["".join(rng.choices(alphabet, k=rng.randint(0, 7))) for _ in range(1500)]
    wrong = [(a, b) for a in versions[:200] for b in versions if _sign(a, b) != compare(a, b)]
    assert wrong == []
