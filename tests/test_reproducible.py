"""`pkgrepo build --check-reproducible`: catches what varies, passes for every shipped recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import RECIPES, run_cli
from tests.helpers.recipes import build_probe


@pytest.mark.parametrize(
    ("leak", "what"),
    [
        ("date +%s%N", "the clock"),
        ("hostname", "the hostname"),
        ("umask", "the umask"),
        (
            "echo $PWD; readlink -f /proc/self/root; cat /proc/self/mountinfo | grep -o '/tmp/[^ ]*' | head -1",
            "the host build directory",
        ),
        (
            "echo $MAKEFLAGS; nproc 2>/dev/null; getconf _NPROCESSORS_ONLN; echo ${{build.jobs}}",
            "the job count",
        ),
    ],
)
def test_variation_is_detected(tmp_path: Path, leak: str, what: str):
    script = (
        f"mkdir -p ${{{{targets.destdir}}}}/usr/share\n({leak}) > ${{{{targets.destdir}}}}/usr/share/leak"
    )
    proc, out = build_probe(tmp_path, "leaky", script)
    assert proc.returncode == 0, proc.stderr
    recipes = tmp_path / "recipes"
    proc = run_cli(
        "build",
        "--check-reproducible",
        "leaky",
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 1, f"{what} did not vary: {proc.stdout}"
    assert (
        "leaky: not reproducible: leaky-1.0-r1.x86_64.pkg.tar.zst: files differ: usr/share/leak"
        in proc.stderr
    )
    assert "NOT reproducible" in proc.stdout


# Each of these takes 10-13 minutes twice over on 2 cores: checked in the nightly run (`-m nightly`).
HEAVY = {"openssl", "python3"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe",
    [
        pytest.param(p.stem, marks=[pytest.mark.nightly] if p.stem in HEAVY else [])
        for p in sorted(RECIPES.glob("*.yaml"))
    ],
)
def test_every_recipe_is_reproducible(built: Path, recipe: str):
    # One packages directory for the session: a recipe's dependencies are built (or found cached) there
    # once, and only the recipe itself is built twice.
    proc = run_cli("build", "--check-reproducible", recipe, "--out", str(built), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)["recipes"]
    assert sorted(report) == [recipe]
    assert report[recipe] == []
