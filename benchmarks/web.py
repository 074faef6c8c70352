"""Time to generate the web catalogue of a whole repository, against the time to publish it.

Usage: python -m benchmarks.web [--packages DIR] [--synthetic N] [--repeat 3]

The repository is every package in DIR (default: the main job's `packages/`, with their
SBOMs and provenance) plus N synthetic packages (real package files without evidence),
published in one bulk publish. Then the site is generated from it, in-process
(`pkgrepo.web.site.generate`: verify the metadata, hash every package file, read each
manifest, verify each provenance, render) with an empty file-list cache, then again after
one more package is published (only the new package is read: what every publish does),
and as a whole `pkgrepo repo web` command (interpreter and imports included). Target
(issue 18): generation under 10 % of the publish of the same repository.
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

from pkgrepo.attest.advisories import data_dir
from pkgrepo.attest.evidence import evidence_files
from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.repository import Repository
from pkgrepo.web.site import generate, load_inputs
from tests.helpers.archives import make_package

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=Path, default=ROOT / "packages")
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-web-"))
    files = sorted(args.packages.glob("*.pkg.tar.zst")) if args.packages.is_dir() else []
    pool = work / "pool"
    pool.mkdir()
    files += [make_package(pool, f"synthetic{i:05d}") for i in range(args.synthetic)]
    if not files:
        sys.exit(f"no packages: build some into {args.packages} or pass --synthetic N")
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} packages, {size / 2**20:.1f} MiB")
    inputs = load_inputs(data_dir("advisories"), data_dir("vex"))
    publish, cold, one, warm = [], [], [], []
    for i in range(args.repeat):
        repo = Repository(work / f"repo{i}", KeyStore(work / f"keys{i}"))
        repo.init()
        t = time.perf_counter()
        repo.publish(files, sidecars=evidence_files)
        publish.append(time.perf_counter() - t)
        cache = work / f"cache{i}"
        t = time.perf_counter()
        generate(repo.root, *inputs, cache=cache)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        repo.publish([make_package(pool, f"later{i}")])
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = generate(repo.root, *inputs, cache=cache)
        warm.append(time.perf_counter() - t)
    env = {**os.environ, "PKGREPO_KEYS": str(work / "keys-cli")}
    cli = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pkgrepo", "repo", "web", str(work / "repo0")],
            check=True,
            capture_output=True,
            env=env,
        )
        cli.append(time.perf_counter() - t)
    p, c = statistics.median(publish), statistics.median(cold)
    o, w = statistics.median(one), statistics.median(warm)
    print(f"{'publish, whole repository':>32}: {p:7.3f} s")
    print(f"{'site, first generation':>32}: {c:7.3f} s = {100 * c / p:5.1f} % of it (target < 10 %)")
    print(f"{'publish one more package':>32}: {o:7.3f} s")
    print(f"{'site after it (file lists kept)':>32}: {w:7.3f} s = {100 * w / p:5.1f} % of the whole publish")
    print(f"{'pkgrepo repo web (command)':>32}: {statistics.median(cli):7.3f} s (interpreter, imports)")
    print(f"{result.pages} pages")


if __name__ == "__main__":
    main()
