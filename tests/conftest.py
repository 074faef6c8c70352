"""Shared fixtures: real builds of musl, zlib, hello, busybox (and lua), of the package manager's
client set, and of every example image's packages (nginx, curl and git among them); the `needs_apt_lists` skip;
no test collected is a failure.

Sources come from the user's source cache (content-addressed and verified,
so sharing it with the main job is safe); packages go into a per-session
directory, built or taken from the user's build cache by the exact key of their
inputs (`tests.helpers.cli.build_cached`). Shared code that is not a fixture lives in tests/helpers/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import RECIPES, ROOT, build_cached
from tests.helpers.peers import MAIN


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, not fail, the tests that read Debian's apt lists on a machine that has none."""
    if MAIN is not None:
        return
    skip = pytest.mark.skip(
        reason="needs the bookworm main list in /var/lib/apt/lists: run `apt-get update` first"
    )
    for item in items:
        if item.get_closest_marker("needs_apt_lists"):
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected no test fails (exit 1) instead of pytest's exit 5, which a CI
    script could take for a pass: a broken import, a wrong path or a marker filter that
    selects nothing must be seen."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nno test ran: check the paths and the -m/-k filter (tests/README.md); failing", flush=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """musl, zlib, hello and busybox built from their real sources and tested, in a fresh directory."""
    out = tmp_path_factory.mktemp("packages")
    proc = build_cached(out, "musl", "zlib", "hello", "busybox")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def image_packages(built) -> Path:
    """`built` plus lua (the Lua app's runtime and compiler), for the image tests."""
    proc = build_cached(built, "lua")
    assert proc.returncode == 0, proc.stderr
    return built


CLIENT = ["libarchive", "py3-click", "py3-securesystemslib", "py3-tuf", "py3-libarchive-c", "pkgrepo"]


@pytest.fixture(scope="session")
def client_set(built: Path, tmp_path_factory) -> Path:
    """`built` plus the client set and python3, in a directory of their own (a pkgrepo package in
    `built` would join every later test's dev profile); the pkgrepo recipe pinned to this
    checkout's code, as scripts/pkgrepo-source.py does it."""
    out = tmp_path_factory.mktemp("client")
    shutil.copytree(built, out, dirs_exist_ok=True)
    recipes = tmp_path_factory.mktemp("recipes")
    shutil.copytree(RECIPES, recipes, dirs_exist_ok=True)  # pkgrepo.yaml is rewritten below
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "pkgrepo-source.py"),
            "--recipe",
            str(recipes / "pkgrepo.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    proc = build_cached(out, *CLIENT, "python3", "ca-certificates", "hello", recipes=recipes)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def example_packages(client_set: Path, tmp_path_factory) -> Path:
    """`client_set` plus the rest of what the example images in repo-data/images/ hold (lua,
    sqlite, the datastores valkey and postgresql, and nginx, curl, git), so that their dev images
    carry the package manager as the main job's do. The servers come from the build cache (the main
    job builds them): a cold build of valkey, postgresql, pcre2, nghttp2, curl, nginx and git takes
    about 30 minutes on 2 cores."""
    out = tmp_path_factory.mktemp("examples")
    shutil.copytree(client_set, out, dirs_exist_ok=True)
    proc = build_cached(out, "lua", "sqlite", "nginx", "curl", "git", "valkey", "postgresql")
    assert proc.returncode == 0, proc.stderr
    return out
