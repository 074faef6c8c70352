"""Prod image assembly: `pkgrepo image build` against `buildah bud` of `FROM scratch` + `ADD rootfs.tar /`.

Usage: python -m benchmarks.image [--packages DIR] [--repeat N] [SPEC...]

For each example spec (default: every repo-data/images/*.yaml whose packages
are in the directory), from cached packages: the whole-process wall time of
`pkgrepo image build --profile prod` (CLI start, resolve, install, minimize,
layers, gzip, layout), and in the same run the wall time of `buildah bud`
(vfs storage, chroot isolation, a fresh store each time) of the equivalent
Dockerfile over the rootfs tarball pkgrepo writes (the tarball is made before
timing). Prints best-of-N times, their ratio, and the compressed image size
beside distroless static (about 2 MiB) and Chainguard static (0.6-0.8 MB), and for the server
images (valkey, postgresql, nginx, curl, git) beside the published size of the official and
hardened images where known (PUBLISHED, with its sources).
Targets (issue 9): hello's prod image in under 1 s and under 500 KB compressed.

Push (issue 19), to Debian's docker-registry on loopback, best of N, each to a
fresh tag: `skopeo copy oci:LAYOUT docker://REF` alone (the peer), `pkgrepo image
push` (skopeo plus the SBOM, provenance and VEX attachments) and `pkgrepo image
push --sign` (plus the sigstore signature), with image keys in a temporary
$PKGREPO_KEYS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.servers import docker_registry

ROOT = Path(__file__).resolve().parent.parent
PEERS = "distroless static ~2.0 MiB; Chainguard static 0.6-0.8 MB"
# The published compressed size (linux/amd64) of the official and hardened images an example stands
# in for, each with where the figure comes from; "not known" where no source was reachable here.
PUBLISHED = {
    "postgresql": "postgres:18 (Debian) ~80 MB, postgres:18-alpine ~50 MB (tessl.io alonso-skills/postgres "
    "references/91-docker-postgres.md); hardened (DHI, Chainguard): not known",
    "valkey": "valkey/valkey:9.1, -alpine: not known; hardened (DHI, Chainguard): not known",
    "nginx": "nginx:1.30-alpine-slim 8.2 MB, nginx:1.30-trixie 66.1 MB (nginx 1.30.4; docker-library/repo-info "
    "repos/nginx/remote/1.30-alpine-slim.md, 1.30-trixie.md); hardened: not known",
    "curl": "no official image; hardened: not known",
    "git": "no official image; hardened: not known",
}


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


def push_times(layout: Path, registry: str, repeat: int) -> dict:
    pkgrepo = [sys.executable, "-m", "pkgrepo", "image", "push", str(layout)]
    runs = {
        "skopeo": lambda i: [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{registry}/bench/skopeo:{i}",
        ],
        "push": lambda i: [*pkgrepo, f"{registry}/bench/plain:{i}", "--insecure"],
        "push_sign": lambda i: [*pkgrepo, f"{registry}/bench/signed:{i}", "--insecure", "--sign"],
    }
    return {name: min(timed(make(i), ROOT)[0] for i in range(repeat)) for name, make in runs.items()}


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
        os.environ["PKGREPO_KEYS"] = str(Path(tmp) / "keys")  # image and provenance keys of the run
        subprocess.run(
            [sys.executable, "-m", "pkgrepo", "image", "key", "init"], check=True, capture_output=True
        )
        stack = contextlib.ExitStack()
        registry = None
        if shutil.which("docker-registry") is not None:
            registry = stack.enter_context(docker_registry(Path(tmp) / "registry"))
        pushes = []
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
            if spec.stem in PUBLISHED:
                print(f"{'':14} published: {PUBLISHED[spec.stem]}")
            if registry is not None:
                pushes.append((spec.stem, push_times(Path(tmp) / f"{spec.stem}-0", registry, args.repeat)))
        if registry is None:
            print("push: skipped (docker-registry is not installed)")
        else:
            stack.close()
            print(f"\npush to docker-registry on loopback (best of {args.repeat})")
            print(f"{'spec':14} {'skopeo':>9} {'push':>9} {'push+sign':>10}")
            for name, t in pushes:
                print(f"{name:14} {t['skopeo']:8.2f}s {t['push']:8.2f}s {t['push_sign']:9.2f}s")


if __name__ == "__main__":
    main()
