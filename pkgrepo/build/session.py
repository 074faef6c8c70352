"""Build several recipes in order, test them, and check reproducibility."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.build.builder import LOGS, RECORDS, Builder, BuildResult, Variation
from pkgrepo.build.plan import Recipes, plan
from pkgrepo.build.testing import run_test
from pkgrepo.errors import BuildFailed
from pkgrepo.package.archive import read_head

# The second build of --check-reproducible differs from the first in all of these.
FIRST = Variation(hostname="pkgrepo-a", umask=0o022)
SECOND = Variation(hostname="check-b.example", umask=0o002, jobs=1)
# ...and in the wall clock: the second build starts at least this many seconds after the
# first one ended, so every clock reading of it differs, down to the second.
CLOCK_GAP = 2.0


def build_all(
    builder: Builder, recipes: Recipes, wanted: list[str], test: bool = True, force: bool = False
) -> list[BuildResult]:
    order = plan(recipes, wanted, with_tests=test)
    results = []
    for i, name in enumerate(order):
        path, recipe = recipes[name]
        builder.report(f"[{i + 1}/{len(order)}] {name}")
        results.append(builder.build(path, recipe, force=force and name in wanted))
    if test:
        failures = []
        for result in results:
            path, recipe = recipes[result.name]
            if recipe.test is None or builder.tested(result.name):
                continue
            builder.report(f"testing {result.name}")
            try:
                run_test(path, recipe, builder.out, result.log)
                builder.mark_tested(result.name)
            except BuildFailed as e:
                _discard(builder, result)
                failures.append(e)
        if failures:
            raise failures[0]
    return results


def _discard(builder: Builder, result: BuildResult) -> None:
    """A package that fails its test is not left behind."""
    for p in result.packages:
        p.unlink(missing_ok=True)
    builder.record_path(result.name).unlink(missing_ok=True)


@dataclass
class Difference:
    package: str
    detail: str


def compare_outputs(a: Path, b: Path) -> list[Difference]:
    names_a = {p.name for p in a.glob("*.pkg.tar.zst")}
    names_b = {p.name for p in b.glob("*.pkg.tar.zst")}
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
            fields = sorted(k for k in info_a.model_fields if getattr(info_a, k) != getattr(info_b, k))
            diffs.append(Difference(name, "metadata differs: " + ", ".join(fields)))
        else:
            diffs.append(Difference(name, "archive bytes differ with equal contents"))
    return diffs


def check_reproducible(builder: Builder, recipes: Recipes, wanted: list[str]) -> dict[str, list[Difference]]:
    """Build each recipe twice under different conditions; return the differences per recipe."""
    order = plan(recipes, wanted, with_tests=False)
    report: dict[str, list[Difference]] = {}
    for name in order:
        path, recipe = recipes[name]
        if name not in wanted:
            builder.build(path, recipe)  # a dependency: built (or cached) once
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f"pkgrepo-repro-{name}-"))
        try:
            first, second = scratch / "a", scratch / "b"
            old_umask = os.umask(FIRST.umask)
            try:
                builder.report(f"{name}: first build")
                builder.build(path, recipe, FIRST, out=first)
                time.sleep(CLOCK_GAP)
                os.umask(SECOND.umask)
                builder.report(f"{name}: second build (other host dir, umask, hostname, jobs, time)")
                builder.build(path, recipe, SECOND, out=second)
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
    record = json.loads((scratch / RECORDS / f"{name}.json").read_text())
    for f in record["packages"]:
        shutil.move(scratch / f, builder.out / f)
    (builder.out / LOGS).mkdir(exist_ok=True)
    shutil.move(scratch / LOGS / f"{name}.log", builder.log_path(name))
    builder.record_path(name).parent.mkdir(exist_ok=True)
    shutil.move(scratch / RECORDS / f"{name}.json", builder.record_path(name))
