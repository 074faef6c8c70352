"""Advisory to image: time from "a new advisory lands in the feed" to "a signed, patched image
whose scan is clean", for zlib.

Usage: python -m benchmarks.patch [--packages DIR]

Set-up (not timed): musl, zlib and busybox built (or taken from --packages DIR, a packages
directory with its .builds records, e.g. from `pkgrepo build musl zlib busybox --out DIR`),
a signed repository holding them, an image root with zlib-utils installed, and a feed
directory (the committed feed's metadata) without the advisory. Timed: the real record
DEBIAN-CVE-2023-45853 of repo-data/advisories lands in the feed; `pkgrepo scan` of the image
finds it (exit 1); a patch declaring `fixes: [CVE-2023-45853]` is added and the release
bumped; one `pkgrepo rollout zlib` rebuilds zlib and every reverse build dependency whose
inputs changed (the rest are cache hits), runs the recipe's tests, publishes the packages with
their SBOMs and signed provenance, and re-assembles the image; `pkgrepo scan --provenance
--fail-on low` of the new image passes (the fix is counted because the signed provenance holds
the patch). Printed: the total wall time and the share of each step (rollout's from its own
--json report). python3 is not timed here: its build is the heavy one (about 20 minutes of
both cores on the 2-core machine), the steps are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCH = "--- /dev/null\n+++ b/SECURITY-FIX\n@@ -0,0 +1 @@\n+CVE-2023-45853\n"
ADVISORY = "DEBIAN-CVE-2023-45853"


def pkgrepo(*args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if proc.returncode not in ok:
        sys.exit(f"pkgrepo {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=Path, default=None, help="Built packages to start from (copied).")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-patch-"))
    env = {"PKGREPO_KEYS": str(work / "keys")}
    recipes, out, images, repo = work / "recipes", work / "packages", work / "images", work / "repo"
    recipes.mkdir()
    for name in ("musl", "zlib", "busybox"):
        shutil.copy(ROOT / "recipes" / f"{name}.yaml", recipes)
        if (ROOT / "recipes" / name).is_dir():  # the recipe's patches
            shutil.copytree(ROOT / "recipes" / name, recipes / name)
    if args.packages:
        shutil.copytree(args.packages, out)
    pkgrepo("build", "musl", "zlib", "busybox", "--recipes", str(recipes), "--out", str(out), env=env)
    pkgrepo("repo", "init", str(repo), env=env)
    pkgrepo("publish", *map(str, sorted(out.glob("*.pkg.tar.zst"))), "--repo", str(repo), env=env)
    pkgrepo("install", "--packages", str(out), "--root", str(images / "base"), "zlib-utils", env=env)
    feed, novex = work / "advisories", work / "vex"
    feed.mkdir()
    novex.mkdir()
    shutil.copy(ROOT / "repo-data" / "advisories" / "feed.json", feed)
    scan = ["scan", str(images / "base"), "--advisories", str(feed), "--vex", str(novex)]
    scan += ["--fail-on", "low", "--allow-unknown", "--provenance", str(out)]

    start = time.perf_counter()
    shutil.copy(ROOT / "repo-data" / "advisories" / f"{ADVISORY}.json", feed)  # the advisory lands
    found = pkgrepo(*scan, env=env, ok=(1,))
    assert ADVISORY in found.stdout, found.stdout
    detected = time.perf_counter()
    (recipes / "fix.patch").write_text(PATCH)
    text = (recipes / "zlib.yaml").read_text().replace("  release: 1\n", "  release: 2\n", 1)
    (recipes / "zlib.yaml").write_text(
        text.replace(
            "\nbuild-depends:",
            "\npatches:\n  - file: fix.patch\n    fixes: [CVE-2023-45853]\n\nbuild-depends:",
        )
    )
    rolled = time.perf_counter()
    proc = pkgrepo(
        "rollout",
        "zlib",
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--repo",
        str(repo),
        "--images",
        str(images),
        "--json",
        env=env,
    )
    report = json.loads(proc.stdout)
    rollout_done = time.perf_counter()
    clean = pkgrepo(*scan, env=env)
    digest = report["images"][0]["digest"]
    total = time.perf_counter() - start
    print(f"patched image sha256:{digest}; scan: {clean.stdout.strip().splitlines()[0]}")
    s = report["seconds"]
    rollout = rollout_done - rolled
    print(
        f"advisory lands -> signed, patched image scanning clean: {total:.1f} s "
        f"(rebuilt {', '.join(report['rebuilt'])}; cached {', '.join(report['cached'])})"
    )
    for label, secs in (
        ("scan finds the advisory", detected - start),
        ("patch + release bump written", rolled - detected),
        ("rebuild (incl. tests)", s["build"]),
        ("publish (signed)", s["publish"]),
        ("assemble image + SBOM", s["assemble"]),
        ("rollout start-up and the rest", rollout - s["build"] - s["publish"] - s["assemble"]),
        ("scan of the new image (clean)", total - (rollout_done - start)),
    ):
        print(f"  {label:32} {secs:6.1f} s ({100 * secs / total:3.0f}%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
