"""`pkgrepo build --check-reproducible`: catches what varies, passes for every shipped recipe."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pkgrepo.builder.session import compare_outputs
from tests.helpers.cli import RECIPES, build_cached, run_cli
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
        ("nice; cut -d' ' -f19 /proc/self/stat", "the niceness"),
    ],
)
def test_variation_is_detected(tmp_path: Path, leak: str, what: str):
    if what == "the niceness" and os.getpriority(os.PRIO_PROCESS, 0) >= 19:
        pytest.skip("already at niceness 19: the second build cannot run at another")
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
    assert "leaky: second build (other host dir, umask, hostname, jobs, niceness, time)" in proc.stderr


# Each of these takes minutes per build on 2 cores (openssl and python3 10-13, postgresql 4-13,
# valkey 3.5, and the servers' stack pcre2, nghttp2, curl, nginx, git about 15 together): checked in
# the nightly run only.
HEAVY = {"openssl", "python3", "valkey", "postgresql", "pcre2", "nghttp2", "curl", "nginx", "git"}
RECIPE_NAMES = [p.stem for p in sorted(RECIPES.glob("*.yaml"))]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [r for r in RECIPE_NAMES if r not in HEAVY])
def test_every_recipe_rebuilds_to_the_same_bytes(tmp_path: Path, recipe: str):
    """CI's check, at half the price of `--check-reproducible`: the build the main job (or an
    earlier session) left in the user's build cache is the first build; one rebuild from scratch,
    on the same dependency packages, under another umask, job count, build directory and time
    must give the same bytes. The full
    check (two fresh builds, the hostname varied too) is the nightly run's, below."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert build_cached(first, recipe).returncode == 0
    dependencies(first, second, recipe)
    old = os.umask(0o002)
    try:
        proc = run_cli("build", recipe, "--out", str(second), "--force", "--no-test", "-j", "1", "--json")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["builds"][-1]["name"] == recipe
    assert [
        f"{d.package}: {d.detail}" for d in compare_outputs(own(first, recipe), own(second, recipe))
    ] == []


def dependencies(first: Path, second: Path, recipe: str) -> None:
    """`second` holds what `first` holds but `recipe`'s own build: the same dependency bytes."""
    mine = set(json.loads((first / ".builds" / f"{recipe}.json").read_text())["packages"])
    (second / ".builds").mkdir(parents=True)
    for f in first.iterdir():
        if f.is_file() and not any(f.name == m or f.name.startswith(m + ".") for m in mine):
            shutil.copy2(f, second / f.name)
    for r in (first / ".builds").glob("*.json"):
        if r.stem != recipe:
            shutil.copy2(r, second / ".builds" / r.name)


def own(out: Path, recipe: str) -> Path:
    """A directory holding only `recipe`'s packages of the packages directory `out` (not its dependencies)."""
    mine = out / f".own-{recipe}"
    mine.mkdir()
    for name in json.loads((out / ".builds" / f"{recipe}.json").read_text())["packages"]:
        os.link(out / name, mine / name)
    return mine


@pytest.mark.slow
@pytest.mark.nightly
@pytest.mark.parametrize("recipe", RECIPE_NAMES)
def test_every_recipe_is_reproducible(built: Path, recipe: str):
    # One packages directory for the session: a recipe's dependencies are built (or found cached) there
    # once, and only the recipe itself is built twice.
    proc = run_cli("build", "--check-reproducible", recipe, "--out", str(built), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)["recipes"]
    assert sorted(report) == [recipe]
    assert report[recipe] == []
