"""Time to publish one package into repositories of 100, 1,000 and 10,000 packages.

Usage: python -m benchmarks.publish [--sizes 100,1000,10000] [--repeat 5]

Synthetic packages (real package files, one small file each) fill each
repository in one bulk publish; then single packages are published one at a
time, in-process (Repository.publish) and as a whole `pkgrepo publish`
command. Target (issue 3): flat, not linear in repository size — a publish
touches one hash bin, the index and the top-level metadata, and reads no
other package file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.repository import Repository
from tests.helpers.archives import make_package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-publish-"))
    pool = work / "pool"
    pool.mkdir()
    start = time.perf_counter()
    files = [make_package(pool, f"pkg{i:05d}") for i in range(max(sizes))]
    extra = [make_package(pool, f"single{i}") for i in range(len(sizes) * args.repeat * 2)]
    print(f"made {len(files) + len(extra)} packages in {time.perf_counter() - start:.1f}s")
    print(f"{'repository':>12}{'fill (s)':>10}{'publish 1, in-process (s)':>28}{'pkgrepo publish (s)':>22}")
    base = None
    for size in sizes:
        path = work / f"repo{size}"
        keys = KeyStore(work / f"keys{size}")
        repo = Repository(path, keys)
        repo.init()
        t = time.perf_counter()
        repo.publish(files[:size])
        fill = time.perf_counter() - t
        inproc = []
        for _ in range(args.repeat):
            f = extra.pop()
            t = time.perf_counter()
            repo.publish([f])
            inproc.append(time.perf_counter() - t)
        cli = []
        for _ in range(args.repeat):
            f = extra.pop()
            t = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pkgrepo",
                    "publish",
                    "--repo",
                    str(path),
                    "--keys",
                    str(keys.directory),
                    str(f),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                env=dict(os.environ),
            )
            cli.append(time.perf_counter() - t)
        med = statistics.median(inproc)
        base = base or med
        print(f"{size:>12,}{fill:>10.2f}{med:>20.4f} ({med / base:4.2f}x){statistics.median(cli):>22.3f}")
    print("ratios are against the smallest repository; flat means close to 1x")


if __name__ == "__main__":
    main()
