"""Time `pkgrepo build --force` with this checkout against another git revision (default: main).

Usage: python -m benchmarks.build [--base REV] --packages DIR --base-packages DIR [--repeat N] [NAME...]

The base revision is exported with `git archive` into a temporary directory and
run with the same Python and the same source cache, each on a copy of a packages
directory holding its build dependencies as that revision built them (so its cache
keys match and only the named recipes are rebuilt): only pkgrepo's own code differs. The runs of
the two checkouts alternate; the best of N wall times of each is printed with
the ratio this/base. Target (issue 7): the sandboxed host steps (unpack, patch,
strip in bubblewrap, no-follow reads) within 5 % of the base.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def timed_build(checkout: Path, packages: Path, name: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pkgrepo", "build", name, "--force", "--no-test", "--out", str(packages)],
        cwd=checkout,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=["hello", "zlib", "xz", "lua"])
    ap.add_argument("--base", default="main", help="git revision to compare against")
    ap.add_argument("--packages", type=Path, required=True, help="build dependencies built by this checkout")
    ap.add_argument("--base-packages", type=Path, required=True, help="build dependencies built by the base")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pkgrepo-bench-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.base], cwd=HERE, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        checkouts = {"this": HERE, "base": base}
        dirs = {k: Path(tmp) / f"packages-{k}" for k in checkouts}
        shutil.copytree(args.packages, dirs["this"])
        shutil.copytree(args.base_packages, dirs["base"])
        total = dict.fromkeys(checkouts, 0.0)
        for name in args.names:
            best = dict.fromkeys(checkouts, float("inf"))
            for _ in range(args.repeat):
                for k, checkout in checkouts.items():
                    best[k] = min(best[k], timed_build(checkout, dirs[k], name))
            for k in checkouts:
                total[k] += best[k]
            print(
                f"{name:8} this {best['this']:7.1f} s  base {best['base']:7.1f} s  ratio {best['this'] / best['base']:.3f}"
            )
        print(
            f"{'total':8} this {total['this']:7.1f} s  base {total['base']:7.1f} s  ratio {total['this'] / total['base']:.3f}"
        )


if __name__ == "__main__":
    main()
