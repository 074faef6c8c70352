"""The Python app image's size: prod and dev, beside the community and hardened Python images.

Usage: python -m benchmarks.python_image [--packages DIR]

Builds repo-data/images/python-app.yaml (prod, then dev) from a packages
directory holding python3, ca-certificates and, for dev, the package manager's
set (default $PKGREPO_PACKAGES or ./packages) and prints each image's size
uncompressed (the root filesystem as a tar) and compressed (the sum of its
layer blobs), beside the published sizes of `python:3.11-slim` (about 45 MB
compressed, 125 MB uncompressed) and Docker Hardened Images' python (about
35 MB compressed). Target (issue 10): the prod image under 15 MB compressed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "repo-data" / "images" / "python-app.yaml"
PEERS = [("python:3.11-slim (community)", "~45 MB", "~125 MB"), ("Docker Hardened python", "~35 MB", "")]
TARGET = 15_000_000


def build(profile: str, packages: Path, work: Path) -> dict:
    tar = work / f"{profile}.tar"
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pkgrepo",
            "image",
            "build",
            str(SPEC),
            "--profile",
            profile,
            "--packages",
            str(packages),
            "--out",
            str(work / profile),
            "--tar",
            str(tar),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"pkgrepo image build --profile {profile} failed: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    return {
        "profile": profile,
        "compressed": sum(x["size"] for x in data["layers"]),
        "uncompressed": tar.stat().st_size,
        "packages": len(data["packages"]),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=Path, default=Path(os.environ.get("PKGREPO_PACKAGES", "packages")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyimage") as tmp:
        rows = [build(p, args.packages.resolve(), Path(tmp)) for p in ("prod", "dev")]
    print(f"{'image':32} {'compressed':>12} {'uncompressed':>14} {'packages':>9} {'build s':>8}")
    for r in rows:
        print(
            f"{'python-app ' + r['profile']:32} {r['compressed'] / 1e6:>9.2f} MB {r['uncompressed'] / 1e6:>11.2f} MB"
            f" {r['packages']:>9} {r['seconds']:>8.1f}"
        )
    for name, comp, uncomp in PEERS:
        print(f"{name:32} {comp:>12} {uncomp or '-':>14}   (published)")
    prod = rows[0]["compressed"]
    print(
        f"target: prod under {TARGET / 1e6:.0f} MB compressed: {'met' if prod < TARGET else 'NOT met'}"
        f" ({prod / 1e6:.2f} MB)"
    )


if __name__ == "__main__":
    main()
