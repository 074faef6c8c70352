"""Advisory to image: time from "a new advisory lands in the feed" to "a signed, patched image
whose scan is clean", for zlib (the default) or python3.

Usage: python -m benchmarks.patch [--recipe zlib|python3] [--packages DIR]

Set-up (not timed): the recipe and its build dependencies built (or taken from --packages DIR, a
packages directory with its .builds records, e.g. the main job's `packages/`), a signed
repository holding them, an image root with the recipe's package installed (zlib-utils,
python3), and a feed directory (the committed feed's metadata) without the advisory. Timed: a
real record of repo-data/advisories lands in the feed (python3: DEBIAN-CVE-2023-52425, which the
committed VEX answers and this run's empty VEX does not; zlib: DEBIAN-CVE-2023-45853 with its
range opened, as zlib 1.3.2 is past every zlib record);
`pkgrepo scan` of the image finds it (exit 1); a patch declaring the fix is added and the
release bumped; one `pkgrepo rollout NAME` rebuilds the recipe and every reverse build
dependency whose inputs changed (the rest are cache hits), runs the recipe's tests, publishes
the packages with their SBOMs and signed provenance, and re-assembles the image; `pkgrepo scan
--provenance --fail-on low` of the new image passes (the fix is counted because the signed
provenance holds the patch). Printed: the total wall time and the share of each step
(rollout's from its own --json report). python3's rebuild is the heavy one (about 10 minutes of
both cores on the 2-core machine).
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
# recipe -> (its recipes with their build dependencies, the package the image holds, the advisory,
# whether the record's range is opened to cover today's release: zlib 1.3.2 is past every zlib
# record of the feed, so its record is the real one with its fixed version taken out)
CASES = {
    "zlib": (("musl", "zlib", "busybox"), "zlib-utils", "DEBIAN-CVE-2023-45853", True),
    "python3": (
        ("musl", "zlib", "xz", "bzip2", "libffi", "expat", "openssl", "sqlite", "busybox", "python3"),
        "python3",
        "DEBIAN-CVE-2023-52425",
        False,
    ),
}


def declare_fix(text: str, cve: str) -> str:
    """The recipe `text` with its release bumped and a patch declaring `cve` fixed."""
    release = int(text.split("\n  release: ", 1)[1].split("\n", 1)[0])
    text = text.replace(f"\n  release: {release}\n", f"\n  release: {release + 1}\n", 1)
    entry = f"  - {{file: fix.patch, fixes: [{cve}]}}\n"
    if "\npatches:\n" in text:
        return text.replace("\npatches:\n", "\npatches:\n" + entry, 1)
    return text.replace("\nbuild-depends:", f"\npatches:\n{entry}\nbuild-depends:", 1)


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
    ap.add_argument("--recipe", choices=sorted(CASES), default="zlib")
    ap.add_argument("--packages", type=Path, default=None, help="Built packages to start from (copied).")
    args = ap.parse_args()
    names, package, advisory, opened = CASES[args.recipe]
    cve = advisory.removeprefix("DEBIAN-")
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-patch-"))
    env = {"PKGREPO_KEYS": str(work / "keys")}
    recipes, out, images, repo = work / "recipes", work / "packages", work / "images", work / "repo"
    recipes.mkdir()
    for name in names:
        shutil.copy(ROOT / "recipes" / f"{name}.yaml", recipes)
        if (ROOT / "recipes" / name).is_dir():  # the recipe's patches
            shutil.copytree(ROOT / "recipes" / name, recipes / name)
    if args.packages:
        shutil.copytree(args.packages, out)
    pkgrepo("build", *names, "--recipes", str(recipes), "--out", str(out), env=env)
    pkgrepo("repo", "init", str(repo), env=env)
    pkgrepo("publish", *map(str, sorted(out.glob("*.pkg.tar.zst"))), "--repo", str(repo), env=env)
    pkgrepo("install", "--packages", str(out), "--root", str(images / "base"), package, env=env)
    feed, novex = work / "advisories", work / "vex"
    feed.mkdir()
    novex.mkdir()
    shutil.copy(ROOT / "repo-data" / "advisories" / "feed.json", feed)
    scan = ["scan", str(images / "base"), "--advisories", str(feed), "--vex", str(novex)]
    scan += ["--fail-on", "low", "--allow-unknown", "--provenance", str(out)]

    start = time.perf_counter()
    record = json.loads((ROOT / "repo-data" / "advisories" / f"{advisory}.json").read_text())
    if opened:
        for affected in record["affected"]:
            affected["ranges"] = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    (feed / f"{advisory}.json").write_text(json.dumps(record))  # the advisory lands
    found = pkgrepo(*scan, env=env, ok=(1,))
    assert advisory in found.stdout, found.stdout
    detected = time.perf_counter()
    (recipes / "fix.patch").write_text(f"--- /dev/null\n+++ b/SECURITY-FIX\n@@ -0,0 +1 @@\n+{cve}\n")
    recipe = recipes / f"{args.recipe}.yaml"
    recipe.write_text(declare_fix(recipe.read_text(), cve))
    rolled = time.perf_counter()
    proc = pkgrepo(
        "rollout",
        args.recipe,
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
