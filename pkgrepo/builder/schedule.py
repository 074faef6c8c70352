"""Run a build plan as a DAG: independent recipes at once, within one job budget.

The budget (`--jobs`, default the core count) is shared between concurrent
builds and their `make -j`: a build starting when others run gets a share of
the free job slots (at least one) as its `${{build.jobs}}`, and holds them
until it ends. A recipe starts when every recipe it needs has finished; with
`keep_going`, a failure skips only what needs the failed recipe.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Set
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from pkgrepo.errors import PkgrepoError


@dataclass
class Outcome:
    """What happened to every recipe of a plan."""

    done: dict[str, object] = field(default_factory=dict)  # name -> the task's result
    failed: dict[str, PkgrepoError] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> the failed recipe it needed
    seconds: float = 0.0


class Events:
    """What the scheduler tells a progress view; the default says nothing."""

    def planned(self, names: list[str]) -> None: ...

    def started(self, name: str, jobs: int) -> None: ...

    def finished(self, name: str, result: object) -> None: ...

    def failed(self, name: str, error: PkgrepoError) -> None: ...

    def skipped(self, name: str, because: str) -> None: ...


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_dag(
    order: list[str],
    needs: Mapping[str, Set[str]],
    task: Callable[[str, int], object],
    jobs: int,
    keep_going: bool = False,
    events: Events | None = None,
) -> Outcome:
    """Run `task(name, jobs_share)` for every name of `order` (dependencies first), `needs` first.

    Without `keep_going` the first failure stops new starts; running tasks finish either way."""
    events = events or Events()
    events.planned(list(order))
    jobs = max(1, jobs)
    start = time.monotonic()
    todo = list(order)
    waiting = {n: set(needs.get(n, ())) & set(order) for n in order}
    out = Outcome()
    running: dict[Future, tuple[str, int]] = {}
    free = jobs

    def blocked_by(name: str) -> str | None:
        bad = waiting[name] & (set(out.failed) | set(out.skipped))
        return min(bad) if bad else None

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="build") as pool:
        while todo or running:
            stop = bool(out.failed) and not keep_going
            for name in list(todo):
                if stop:
                    break
                because = blocked_by(name)
                if because is not None:
                    todo.remove(name)
                    root = out.skipped.get(because, because)
                    out.skipped[name] = root
                    events.skipped(name, root)
            ready = [] if stop else [n for n in todo if not (waiting[n] - set(out.done))]
            while ready and free > 0:
                name = ready.pop(0)
                share = max(1, free // (len(ready) + 1))
                free -= share
                todo.remove(name)
                events.started(name, share)
                running[pool.submit(task, name, share)] = (name, share)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: running[f][0]):
                name, share = running.pop(fut)
                free += share
                try:
                    result = fut.result()
                except PkgrepoError as e:
                    out.failed[name] = e
                    events.failed(name, e)
                else:
                    out.done[name] = result
                    events.finished(name, result)
        for name in todo:  # not started: stopped by a failure
            out.skipped.setdefault(name, blocked_by(name) or min(out.failed))
    out.seconds = time.monotonic() - start
    return out
