"""Patch to image: time from "patch added to zlib's recipe" to "patched image digest printed".

Usage: python -m benchmarks.patch [--packages DIR]

Set-up (not timed): musl, zlib and busybox built (or taken from --packages DIR, a packages
directory with its .builds records, e.g. from `pkgrepo build musl zlib busybox --out DIR`),
a signed repository holding them and an image root with zlib-utils installed. Timed: a
patch is added and the release bumped, then one `pkgrepo rollout zlib` rebuilds zlib and
every reverse build dependency whose inputs changed (the rest are cache hits), runs the
recipe's tests, publishes the packages with their SBOMs and provenance, and re-assembles
the image. Printed: the total wall time and the share spent rebuilding versus publishing
and assembling (from the command's own --json report).
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
PATCH = "--- /dev/null\n+++ b/SECURITY-FIX\n@@ -0,0 +1 @@\n+PKGREPO-2024-0001\n"


def pkgrepo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if proc.returncode:
        sys.exit(f"pkgrepo {' '.join(args)} failed: {proc.stderr.strip()}")
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

    start = time.perf_counter()
    (recipes / "fix.patch").write_text(PATCH)
    text = (recipes / "zlib.yaml").read_text().replace("  release: 1\n", "  release: 2\n", 1)
    (recipes / "zlib.yaml").write_text(
        text.replace("\nbuild-depends:", "\npatches:\n  - file: fix.patch\n\nbuild-depends:")
    )
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
    digest = report["images"][0]["digest"]
    print(f"patched image sha256:{digest}")
    total = time.perf_counter() - start
    s = report["seconds"]
    inside = s["build"] + s["publish"] + s["assemble"]
    print(
        f"patch added -> patched image digest: {total:.1f} s (rebuilt {', '.join(report['rebuilt'])}; "
        f"cached {', '.join(report['cached'])})"
    )
    print(f"  rebuild (incl. tests): {s['build']:.1f} s ({100 * s['build'] / inside:.0f}%)")
    print(f"  publish:               {s['publish']:.1f} s ({100 * s['publish'] / inside:.0f}%)")
    print(f"  assemble image + SBOM: {s['assemble']:.1f} s ({100 * s['assemble'] / inside:.0f}%)")
    print(f"  command start-up and the rest: {total - inside:.1f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
