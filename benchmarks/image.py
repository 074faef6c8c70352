"""Prod image assembly: `pkgrepo image build` against `buildah bud` of `FROM scratch` + `ADD rootfs.tar /`.

Usage: python -m benchmarks.image [--packages DIR] [--repeat N] [SPEC...]

For each example spec (default: every repo-data/images/*.yaml whose packages
are in the directory), from cached packages: the whole-process wall time of
`pkgrepo image build --profile prod` (CLI start, resolve, install, minimize,
layers, gzip, layout), and in the same run the wall time of `buildah bud`
(vfs storage, chroot isolation, a fresh store each time) of the equivalent
Dockerfile over the rootfs tarball pkgrepo writes (the tarball is made before
timing). Prints best-of-N times, their ratio, and the compressed image size
beside distroless static (about 2 MiB) and Chainguard static (0.6-0.8 MB).
Targets (issue 9): hello's prod image in under 1 s and under 500 KB compressed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = "distroless static ~2.0 MiB; Chainguard static 0.6-0.8 MB"


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args[:4])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return seconds, proc.stdout


def bench(spec: Path, packages: Path, repeat: int, work: Path) -> dict:
    pkgrepo = [sys.executable, "-m", "pkgrepo"]
    times, data = [], {}
    for i in range(repeat):
        out = work / f"{spec.stem}-{i}"
        t, stdout = timed(
            [*pkgrepo, "image", "build", str(spec), "--packages", str(packages), "--out", str(out), "--json"],
            ROOT,
        )
        times.append(t)
        data = json.loads(stdout)
    ctx = work / f"{spec.stem}-ctx"
    ctx.mkdir()
    timed(
        [*pkgrepo, "rootfs", str(spec), "--packages", str(packages), "--out", str(ctx / "rootfs.tar")], ROOT
    )
    (ctx / "Dockerfile").write_text("FROM scratch\nADD rootfs.tar /\nUSER 65532:65532\n")
    buildah_times = []
    for i in range(repeat):
        store = work / f"store-{spec.stem}-{i}"
        args = [
            "buildah",
            "--root",
            str(store / "root"),
            "--runroot",
            str(store / "run"),
            "--storage-driver",
            "vfs",
            "bud",
            "--isolation",
            "chroot",
            "-t",
            f"bench-{spec.stem}",
            str(ctx),
        ]
        buildah_times.append(timed(args, ctx)[0])
        subprocess.run(
            [
                "buildah",
                "--root",
                str(store / "root"),
                "--runroot",
                str(store / "run"),
                "--storage-driver",
                "vfs",
                "rmi",
                "--all",
                "--force",
            ],
            capture_output=True,
        )
        shutil.rmtree(store, ignore_errors=True)
    return {
        "spec": spec.stem,
        "pkgrepo_s": min(times),
        "buildah_s": min(buildah_times),
        "size": data["size"],
        "layers": len(data["layers"]),
        "digest": data["digest"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", type=Path)
    ap.add_argument("--packages", type=Path, default=ROOT / "packages")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from pkgrepo.resolve.native import NativeIndex

    names = set(NativeIndex(args.packages.resolve()).names())
    specs = args.specs or sorted((ROOT / "repo-data" / "images").glob("*.yaml"))
    print(f"prod images from {args.packages} (best of {args.repeat}); peers: {PEERS}")
    print(f"{'spec':14} {'pkgrepo':>9} {'buildah':>9} {'ratio':>6} {'size':>10} layers")
    with tempfile.TemporaryDirectory(prefix="pkgrepo-bench-image-") as tmp:
        for spec in specs:
            import yaml

            wanted = [p for p in yaml.safe_load(spec.read_text())["packages"] if not p.startswith("!")]
            if not all(w in names for w in wanted):
                print(f"{spec.stem:14} skipped: {', '.join(w for w in wanted if w not in names)} not built")
                continue
            r = bench(spec, args.packages.resolve(), args.repeat, Path(tmp))
            print(
                f"{r['spec']:14} {r['pkgrepo_s']:8.2f}s {r['buildah_s']:8.2f}s {r['buildah_s'] / r['pkgrepo_s']:5.1f}x"
                f" {r['size'] / 1000:7.1f} kB {r['layers']:>6}"
            )


if __name__ == "__main__":
    main()
