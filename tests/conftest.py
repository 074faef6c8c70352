"""Shared fixtures: real builds of musl, zlib, hello, busybox (and lua); the `needs_apt_lists` skip;
no test collected is a failure.

Sources come from the user's source cache (content-addressed and verified,
so sharing it with the main job is safe); packages go into a per-session
directory, built or taken from the user's build cache by the exact key of their
inputs (`tests.helpers.cli.build_cached`). Shared code that is not a fixture lives in tests/helpers/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import build_cached
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
