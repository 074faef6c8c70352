"""The build scheduler against one-at-a-time builds, the no-op build and a cache-hit build, in one run.

Usage: python -m benchmarks.farm [--recipes DIR] [--jobs N]

1. cold build of every recipe with the scheduler (`pkgrepo build --all`, the
   job budget shared between concurrent builds) against one recipe at a time
   (each `pkgrepo build NAME` in dependency order, alone on the machine with
   the whole budget), both from an empty packages directory and a warm source
   cache; prints the wall ratio (target, issue 12: <= 0.7 on 2 cores);
2. the no-op `pkgrepo build --all` over the built set (target: < 0.5 s);
3. `pkgrepo build --all --cache-from DIR` into an empty packages directory
   from the build cache the scheduled run filled (`--cache-to`).
Tests are skipped (`--no-test`) in every run so only building is compared.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pkgrepo(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pkgrepo", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", type=Path, default=ROOT / "recipes")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()
    from pkgrepo.builder.plan import plan
    from pkgrepo.recipe.load import load_recipes

    recipes = load_recipes(args.recipes)
    order = plan(recipes, sorted(recipes), with_tests=False)
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    common = ["--recipes", str(args.recipes), "--no-test", *jobs]
    with tempfile.TemporaryDirectory(prefix="pkgrepo-farm-") as tmp:
        t = Path(tmp)
        pkgrepo("fetch", "--recipes", str(args.recipes))  # sources cached before any timing
        one_by_one = sum(pkgrepo("build", name, "--out", str(t / "serial"), *common) for name in order)
        scheduled = pkgrepo(
            "build", "--all", "--out", str(t / "dag"), "--cache-to", str(t / "cache"), *common
        )
        noop = min(pkgrepo("build", "--all", "--out", str(t / "dag"), *common) for _ in range(3))
        hit = pkgrepo(
            "build", "--all", "--out", str(t / "fromcache"), "--cache-from", str(t / "cache"), *common
        )
    print(
        f"{len(order)} recipes: one at a time {one_by_one:.1f}s, scheduled {scheduled:.1f}s, "
        f"ratio {scheduled / one_by_one:.2f} (target <= 0.7)"
    )
    print(f"no-op build --all: {noop:.2f}s (target < 0.5 s)")
    print(f"build --all from the build cache: {hit:.2f}s")


if __name__ == "__main__":
    main()
