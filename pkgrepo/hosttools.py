"""The host tools every build uses (compiler, binutils, make, kernel headers), as facts.

Their versions are part of every build's cache key and of its provenance; both
the build and the evidence rooms read them from here.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path


@cache
def identity() -> dict[str, str]:
    """Versions of the host tools a build uses: part of every cache key and of provenance."""
    out = {}
    for tool, argv in {
        "gcc": ["gcc", "--version"],
        "binutils": ["ld", "--version"],
        "make": ["make", "--version"],
    }.items():
        try:
            text = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
            out[tool] = text.splitlines()[0] if text else "absent"
        except OSError:
            out[tool] = "absent"
    try:
        out["kernel-headers"] = (Path("/usr/include/linux/version.h")).read_text().split("\n")[0]
    except OSError:
        out["kernel-headers"] = "absent"
    return out
