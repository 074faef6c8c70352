"""The build scheduler: DAG order, a shared job budget, keep-going (real threads, real timing)."""

from __future__ import annotations

import threading
import time

import pytest

from pkgrepo.builder.schedule import Events, run_dag
from pkgrepo.errors import BuildFailed

NEEDS = {"app": {"lib", "tool"}, "lib": {"libc"}, "tool": {"libc"}, "libc": set(), "other": set()}
ORDER = ["libc", "lib", "other", "tool", "app"]


class Recorder(Events):
    def __init__(self):
        self.lock = threading.Lock()
        self.in_use = 0
        self.peak = 0
        self.spans: dict[str, tuple[float, float]] = {}
        self.shares: dict[str, int] = {}
        self.skips: dict[str, str] = {}

    def task(self, fail: set[str] = frozenset(), seconds: float = 0.2):
        def run(name: str, share: int) -> str:
            with self.lock:
                self.in_use += share
                self.peak = max(self.peak, self.in_use)
                self.shares[name] = share
            start = time.monotonic()
            time.sleep(seconds)
            with self.lock:
                self.in_use -= share
                self.spans[name] = (start, time.monotonic())
            if name in fail:
                raise BuildFailed(f"{name}: step 1 failed")
            return name

        return run

    def skipped(self, name: str, because: str) -> None:
        self.skips[name] = because


def test_dependencies_first_independent_at_once_within_budget():
    rec = Recorder()
    out = run_dag(ORDER, NEEDS, rec.task(), jobs=2)
    assert sorted(out.done) == sorted(ORDER) and not out.failed and not out.skipped
    for name, deps in NEEDS.items():
        for dep in deps:
            assert rec.spans[dep][1] <= rec.spans[name][0], f"{name} started before {dep} ended"
    assert rec.peak <= 2
    assert rec.shares["libc"] == 1  # libc and other are ready together: one slot each
    overlap = min(rec.spans["lib"][1], rec.spans["tool"][1]) - max(rec.spans["lib"][0], rec.spans["tool"][0])
    assert overlap > 0.1, "lib and tool need only libc: they must build at the same time"


def test_a_lone_build_gets_the_whole_budget():
    rec = Recorder()
    run_dag(["a", "b"], {"b": {"a"}}, rec.task(seconds=0.01), jobs=4)
    assert rec.shares == {"a": 4, "b": 4}


def test_keep_going_skips_only_what_needs_the_failure():
    rec = Recorder()
    out = run_dag(ORDER, NEEDS, rec.task(fail={"lib"}, seconds=0.05), jobs=2, keep_going=True, events=rec)
    assert set(out.failed) == {"lib"}
    assert out.skipped == {"app": "lib"} and rec.skips == {"app": "lib"}
    assert sorted(out.done) == ["libc", "other", "tool"]


def test_without_keep_going_nothing_new_starts_after_a_failure():
    rec = Recorder()
    out = run_dag(ORDER, NEEDS, rec.task(fail={"libc"}, seconds=0.05), jobs=1)
    assert set(out.failed) == {"libc"}
    assert "app" in out.skipped and "lib" in out.skipped
    assert "app" not in rec.spans


@pytest.mark.parametrize("jobs", [1, 3])
def test_budget_is_never_exceeded(jobs):
    rec = Recorder()
    names = [f"n{i}" for i in range(8)]
    run_dag(names, {}, rec.task(seconds=0.02), jobs=jobs)
    assert rec.peak <= jobs
