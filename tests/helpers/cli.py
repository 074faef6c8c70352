"""The real `pkgrepo` command line, run as a user runs it, and where it runs from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
TRACEBACK = "Traceback (most recent call last)"


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
    timeout: float | None = None,
):
    """Run `pkgrepo ARGS` as a user would, in a subprocess.

    A traceback on stderr fails the test (invariant 8) unless the test asked
    for one with --verbose or PKGREPO_DEBUG."""
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    asked = "--verbose" in args or "-v" in args or env.get("PKGREPO_DEBUG", "") not in ("", "0")
    if TRACEBACK in proc.stderr and not asked:
        pytest.fail(f"pkgrepo {' '.join(args)} printed a traceback (exit {proc.returncode}):\n{proc.stderr}")
    if check and proc.returncode != 0:
        raise AssertionError(f"pkgrepo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def build_cached(out: Path, *names: str, recipes: Path | None = None) -> subprocess.CompletedProcess:
    """`pkgrepo build NAMES --out OUT` through the user's shared build cache.

    The heavy builds the fixtures need (musl, CPython, OpenSSL) are taken from
    `$PKGREPO_CACHE/builds` when a build from exactly the same inputs (pkgrepo's
    own code included in the key) is there, and stored there otherwise: a test
    session on a machine that ran the suite before builds only what changed."""
    from pkgrepo.paths import default_cache

    cache = default_cache() / "builds"
    cache.mkdir(parents=True, exist_ok=True)
    where = ["--recipes", str(recipes)] if recipes else []
    return run_cli(
        "build", *names, *where, "--out", str(out), "--cache-from", str(cache), "--cache-to", str(cache)
    )
