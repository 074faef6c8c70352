"""Time to generate the web catalogue of a whole repository, against the time to publish it.

Usage: python -m benchmarks.web [--packages DIR] [--synthetic N] [--repeat 3]

The repository is every package in DIR (default: the main job's `packages/`, with their
SBOMs and provenance) plus N synthetic packages (real package files without evidence),
published in one bulk publish, twice, into two new repositories, each with an empty cache.
Into the first as `pkgrepo publish` does it: the site rendered ahead by a child process
while the publish signs (`pkgrepo.web.ahead`), then `generate` taking it; what the site adds
to the publish is that publish's time plus the generation after it, less the time of the
publish into the second without a site (the target, issue 18: under 0.10 x). The CPU time of
the child is shown too: the site's work is not smaller, it runs on another core while the
publish waits for the disk. After the second publish the site is generated in-process
(`pkgrepo.web.site.generate`: verify the metadata, read each manifest, verify each
provenance, match advisories, render) given what the publish read and signed
(`PublishReport.vouched`: the manifests and hash bins), without a child; then alone, as `pkgrepo repo web` does it (every bin checked, every package hashed and
read: its site must be the same bytes); then again after one more package is published
(incremental: only the new package is read, pages whose key is unchanged are taken from the
previous site: what every publish does), then the same repository generated in full with an
empty cache (its digest must equal the incremental one), and as a whole `pkgrepo repo web` command (interpreter and imports included), with an
empty user cache and again (VEX documents checked and file lists read before). Prints
ratios; target (issue 18): generation under 0.10 x the publish of the same repository.
"""

from __future__ import annotations

import argparse
import os
import resource
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
from pkgrepo.web.ahead import Ahead
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
    publish, cold, alone, one, warm, full, reused = [], [], [], [], [], [], []
    ahead_publish, ahead_site, added, child_cpu = [], [], [], []
    for i in range(args.repeat):
        repo = Repository(work / f"repo{i}", KeyStore(work / f"keys{i}"))
        repo.init()
        other = Repository(work / f"other{i}", KeyStore(work / f"okeys{i}"))
        other.init()
        cache = work / f"cache{i}"

        def ahead_of_it(repo: Repository = repo, cache: Path = cache):
            """As `pkgrepo publish` runs: the site rendered ahead, on another core."""
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            with Ahead(repo.root, *inputs, cache=cache) as ahead:
                report = timed(
                    repo.publish, files, sidecars=evidence_files, written=ahead.start, into=ahead_publish
                )
                site = timed(
                    generate,
                    repo.root,
                    *inputs,
                    cache=cache,
                    vouched=report.vouched,
                    ahead=ahead,
                    into=ahead_site,
                )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            return site

        def without_it(other: Repository = other):
            """The same packages into another repository, without a site."""
            return timed(other.publish, files, sidecars=evidence_files, into=publish)

        # in turns, first or second: the second publish of a pair may find the disk busier
        if i % 2:
            report, first = without_it(), ahead_of_it()
        else:
            first, report = ahead_of_it(), without_it()
        added.append(ahead_publish[-1] + ahead_site[-1] - publish[-1])
        after_it = timed(
            generate, other.root, *inputs, cache=work / f"ocache{i}", vouched=report.vouched, into=cold
        )
        # the same repository generated alone (`pkgrepo repo web`): nothing handed over
        same = timed(generate, repo.root, *inputs, cache=work / f"alone{i}", into=alone)
        if not same.digest == first.digest == after_it.digest:
            sys.exit(
                f"sites differ: rendered ahead {first.digest}, after {after_it.digest}, alone {same.digest}"
            )
        later = make_package(pool, f"later{i}")
        with Ahead(repo.root, *inputs, cache=cache) as ahead:
            report = timed(repo.publish, [later], sidecars=evidence_files, written=ahead.start, into=one)
            incremental = timed(
                generate, repo.root, *inputs, cache=cache, vouched=report.vouched, ahead=ahead, into=warm
            )
        reused.append(incremental.reused)
        # the same repository, nothing to reuse: a full generation
        whole = timed(generate, repo.root, *inputs, cache=work / f"empty{i}", into=full)
        if whole.digest != incremental.digest:
            sys.exit(f"incremental site {incremental.digest} differs from the full one {whole.digest}")
    env = {**os.environ, "PKGREPO_KEYS": str(work / "keys-cli"), "PKGREPO_CACHE": str(work / "cli")}
    command = [sys.executable, "-m", "pkgrepo", "repo", "web", str(work / "repo0")]
    cold_cli, warm_cli = timed_run(command, env), timed_run(command, env)
    # `pkgrepo publish` as a user runs it (start-up, advisories and VEX loaded, the site rendered
    # ahead), against `--no-web`; the user cache warm (VEX checked before)
    cli_plain, cli_site = [], []
    for i in range(args.repeat):
        for flags, into in (["--no-web"], cli_plain), ([], cli_site):
            root = work / f"cli-{i}{'-'.join(flags)}"
            init = [sys.executable, "-m", "pkgrepo", "repo", "init", str(root), "--keys", str(root / "keys")]
            subprocess.run(init, check=True, capture_output=True, env=env)
            publish_cli = [
                sys.executable,
                "-m",
                "pkgrepo",
                "publish",
                "--repo",
                str(root),
                "--keys",
                str(root / "keys"),
            ]
            into.append(timed_run([*publish_cli, *flags, *map(str, files)], env))
    p, c, a, o, w, f = map(statistics.median, (publish, cold, alone, one, warm, full))
    ap, asite, plus, cpu = map(statistics.median, (ahead_publish, ahead_site, added, child_cpu))
    print(f"{'publish, whole repository, no site':>40}: {p:7.3f} s")
    print(f"{'publish, the site rendered ahead':>40}: {ap:7.3f} s, then the generation {asite:.3f} s")
    print(
        f"{'what the site adds to the publish':>40}: {plus:7.3f} s = {plus / p:6.2f} x the publish (target < 0.10)"
    )
    print(f"{'CPU of the child that rendered it':>40}: {cpu:7.3f} s (on another core, during the publish)")
    print(f"{'site rendered after the publish':>40}: {c:7.3f} s = {c / p:6.2f} x (no child: one core)")
    print(f"{'the same, generated alone':>40}: {a:7.3f} s = {a / p:6.2f} x (repo web: nothing handed over)")
    print(f"{'publish one more package':>40}: {o:7.3f} s")
    print(f"{'site after it (incremental)':>40}: {w:7.3f} s = {w / o:6.2f} x that publish, ", end="")
    print(f"{w / p:5.2f} x the whole publish; {statistics.median(reused)} of {whole.pages} pages reused")
    print(f"{'the same site, full generation':>40}: {f:7.3f} s (same bytes: {whole.digest[:16]}); ", end="")
    print(f"incremental / full = {w / f:.2f}")
    plain, with_site = statistics.median(cli_plain), statistics.median(cli_site)
    print(f"{'pkgrepo publish --no-web (command)':>40}: {plain:7.3f} s")
    print(
        f"{'pkgrepo publish (command, the site)':>40}: {with_site:7.3f} s: the site adds {with_site - plain:.3f} s, ",
        end="",
    )
    print(f"{(with_site - plain) / plain:.2f} x (its imports, advisories and VEX loaded, and the generation)")
    print(f"{'pkgrepo repo web, empty user cache':>40}: {cold_cli:7.3f} s = {cold_cli / c:5.1f} x in-process")
    print(f"{'pkgrepo repo web again':>40}: {warm_cli:7.3f} s = {warm_cli / w:5.1f} x in-process incremental")
    for name, argv in {
        "pkgrepo.cli": [sys.executable, "-c", "import pkgrepo.cli"],
        "jsonschema (the VEX check, once)": [sys.executable, "-c", "import jsonschema"],
    }.items():
        print(f"{'import ' + name:>40}: {timed_run(argv, os.environ):7.3f} s (a fresh interpreter)")


def timed(fn, *args, into: list[float], **kwargs):
    """`fn(*args, **kwargs)`, its seconds appended to `into`."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    into.append(time.perf_counter() - t)
    return out


def timed_run(argv: list[str], env) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
