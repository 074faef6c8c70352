"""Build several recipes in order, test them, and check reproducibility."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.builder.builder import LOGS, Builder, BuildResult
from pkgrepo.builder.context import Variation
from pkgrepo.builder.plan import needs, plan
from pkgrepo.builder.records import move_record, read_record, remove_record
from pkgrepo.builder.schedule import Events, default_jobs, run_dag
from pkgrepo.builder.testing import run_test
from pkgrepo.errors import BuildFailed, PkgrepoError
from pkgrepo.package.archive import read_head
from pkgrepo.package.meta import PACKAGE_SUFFIX
from pkgrepo.recipe.load import Recipes

# The second build of --check-reproducible differs from the first in all of these. Its niceness
# is raised (lowering it needs privilege): a configure that probes nice() and bakes the answer
# in (CPython's HAVE_BROKEN_NICE at niceness 19) differs. A caller already at 19 cannot vary it.
FIRST = Variation(hostname="pkgrepo-a", umask=0o022)
SECOND = Variation(hostname="check-b.example", umask=0o002, jobs=1, nice=10)
NICEST = 19
# ...and in the wall clock: the second build starts at least this many seconds after the
# first one ended, so every clock reading of it differs, down to the second.
CLOCK_GAP = 2.0


def build_all(
    builder: Builder,
    recipes: Recipes,
    wanted: list[str],
    test: bool = True,
    force: bool = False,
    jobs: int | None = None,
    keep_going: bool = False,
    events: Events | None = None,
    scheduler: str | None = None,
) -> list[BuildResult]:
    """Build `wanted` and what they need, independent recipes at once; then run their tests.

    With `scheduler` (a dask.distributed address) the builds run on its workers.

    Raises the failure (or a summary of all of them with `keep_going`) after everything
    that could be built was built."""
    order = plan(recipes, wanted, with_tests=test)
    budget = jobs or default_jobs()
    with _exclusive(builder):
        return _build_all(builder, recipes, wanted, order, test, force, budget, keep_going, events, scheduler)


@contextlib.contextmanager
def _exclusive(builder: Builder) -> Iterator[None]:
    """One build run per packages directory at a time; what a killed run left half-written goes."""
    builder.out.mkdir(parents=True, exist_ok=True)
    fd = os.open(builder.out / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            builder.report(f"waiting for another build into {builder.out}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        for stale in builder.out.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        os.close(fd)


def _build_all(
    builder: Builder,
    recipes: Recipes,
    wanted: list[str],
    order: list[str],
    test: bool,
    force: bool,
    budget: int,
    keep_going: bool,
    events: Events | None,
    scheduler: str | None,
) -> list[BuildResult]:

    def build_one(name: str, share: int) -> BuildResult:
        return builder.build(recipes[name], Variation(jobs=share), force=force and name in wanted)

    graph = needs(recipes)
    if scheduler is None:
        built = run_dag(order, graph, build_one, budget, keep_going, events)
    else:
        from pkgrepo.builder.remote import remote_builder

        task, threads, close = remote_builder(scheduler, builder, recipes, graph)
        try:
            built = run_dag(order, graph, task, threads, keep_going, events)
        finally:
            close()
    results = [built.done[n] for n in order if n in built.done]
    failures = dict(built.failed)
    if test and (keep_going or not failures):
        testable = [r.name for r in results if recipes[r.name].recipe.test and not builder.tested(r.name)]
        by_name = {r.name: r for r in results}

        def test_one(name: str, _share: int) -> None:
            builder.report(f"testing {name}")
            by_name[name].log.parent.mkdir(
                parents=True, exist_ok=True
            )  # a copied packages dir may lack logs/
            try:
                run_test(recipes[name], builder.index, by_name[name].log)
            except BuildFailed:
                _discard(builder, by_name[name])
                raise
            builder.mark_tested(name)

        tested = run_dag(testable, {}, test_one, budget, keep_going=True)
        failures.update(tested.failed)
    if failures:
        raise _summary(failures, built.skipped if keep_going else {})
    return results


def _summary(failures: dict[str, PkgrepoError], skipped: dict[str, str]) -> PkgrepoError:
    """The one failure as it is, or one line naming them all."""
    first = failures[min(failures)]
    if len(failures) == 1 and not skipped:
        return first
    also = ", ".join(sorted(failures)[1:])
    parts = [f"{len(failures)} recipe(s) failed, first {min(failures)}: {first}"]
    if also:
        parts.append(f"also failed: {also}")
    if skipped:
        parts.append("not built: " + ", ".join(f"{n} (needs {b})" for n, b in sorted(skipped.items())))
    return BuildFailed("; ".join(parts))


def _discard(builder: Builder, result: BuildResult) -> None:
    """A package that fails its test is not left behind."""
    for p in result.packages:
        p.unlink(missing_ok=True)
    remove_record(builder.out, result.name)


@dataclass
class Difference:
    package: str
    detail: str


def compare_outputs(a: Path, b: Path) -> list[Difference]:
    names_a = {p.name for p in a.glob(f"*{PACKAGE_SUFFIX}")}
    names_b = {p.name for p in b.glob(f"*{PACKAGE_SUFFIX}")}
    diffs = [Difference(n, "produced by only one of the two builds") for n in sorted(names_a ^ names_b)]
    for name in sorted(names_a & names_b):
        if (a / name).read_bytes() == (b / name).read_bytes():
            continue
        info_a, man_a = read_head(a / name)
        info_b, man_b = read_head(b / name)
        files_a = {e.path: e for e in man_a}
        files_b = {e.path: e for e in man_b}
        changed = sorted(p for p in files_a.keys() | files_b.keys() if files_a.get(p) != files_b.get(p))
        if changed:
            more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
            diffs.append(Difference(name, "files differ: " + ", ".join(changed[:5]) + more))
        elif info_a != info_b:
            a, b = info_a.to_dict(), info_b.to_dict()
            fields = sorted(k for k in a if a[k] != b[k])
            diffs.append(Difference(name, "metadata differs: " + ", ".join(fields)))
        else:
            diffs.append(Difference(name, "archive bytes differ with equal contents"))
    return diffs


def check_reproducible(builder: Builder, recipes: Recipes, wanted: list[str]) -> dict[str, list[Difference]]:
    """Build each recipe twice under different conditions; return the differences per recipe."""
    order = plan(recipes, wanted, with_tests=False)
    report: dict[str, list[Difference]] = {}
    for name in order:
        file = recipes[name]
        if name not in wanted:
            builder.build(file)  # a dependency: built (or cached) once
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f"pkgrepo-repro-{name}-"))
        try:
            first, second = scratch / "a", scratch / "b"
            old_umask = os.umask(FIRST.umask)
            try:
                builder.report(f"{name}: first build")
                builder.build(file, FIRST, out=first)
                time.sleep(CLOCK_GAP)
                os.umask(SECOND.umask)
                nice = ", niceness" if os.getpriority(os.PRIO_PROCESS, 0) < NICEST else ""
                builder.report(f"{name}: second build (other host dir, umask, hostname, jobs{nice}, time)")
                builder.build(file, SECOND, out=second)
            finally:
                os.umask(old_umask)
            report[name] = compare_outputs(first, second)
            if not report[name]:
                _adopt(builder, first, name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return report


def _adopt(builder: Builder, scratch: Path, name: str) -> None:
    """Keep the verified build as the package directory's copy."""
    builder.out.mkdir(parents=True, exist_ok=True)
    record = read_record(scratch, name)
    if record is None:
        raise BuildFailed(f"{name}: the build in {scratch} left no build record")
    for f in record.packages:
        for evidence in sorted(scratch.glob(f"{f}.*")):  # its SBOMs and provenance
            shutil.move(evidence, builder.out / evidence.name)
        shutil.move(scratch / f, builder.out / f)
    (builder.out / LOGS).mkdir(exist_ok=True)
    shutil.move(scratch / LOGS / f"{name}.log", builder.log_path(name))
    move_record(scratch, builder.out, name)
