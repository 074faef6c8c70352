"""Pack and unpack a real staged tree with pkgrepo and with `tar --sort=name | zstd`.

Usage: python -m benchmarks.archive [--packages DIR] [--level N] [--repeat N] [NAME...]

The tree is what `pkgrepo install` puts into a root for NAME... (default: busybox
and sqlite with its development files) from a packages directory built by
`pkgrepo build`. Both tools compress at the same zstd level, single-threaded.
Prints best-of-N wall times, sizes and ratios. Target (issue 2): pkgrepo within
1.2x of tar+zstd's time at equal or smaller size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pkgrepo.package.archive import scan_tree, write_package
from pkgrepo.package.extract import check_package
from pkgrepo.package.meta import PackageInfo
from pkgrepo.package.rootfs import DB, install
from pkgrepo.resolve.native import closure


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=["busybox", "sqlite", "sqlite-dev"])
    ap.add_argument("--packages", type=Path, default=Path("packages"))
    ap.add_argument("--level", type=int, default=19)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-"))
    try:
        tree = work / "tree"
        needed = closure(args.packages, args.names)
        install([check_package(Path(p.location)) for p in needed], tree)
        (tree / DB).unlink()
        files = [
            str(p.relative_to(tree)) for p in sorted(tree.rglob("*")) if p.is_symlink() or not p.is_dir()
        ]
        manifest = scan_tree(tree, files)
        size = sum(e.size for e in manifest)
        info = PackageInfo(name="bench", version="1", origin="bench", installed_size=size)
        ours, theirs = work / "bench.pkg.tar.zst", work / "bench.tar.zst"

        def pack_ours() -> None:
            write_package(tree, scan_tree(tree, files), info, ours, level=args.level)

        def pack_tar() -> None:
            tar = subprocess.Popen(
                [
                    "tar",
                    "--sort=name",
                    "--owner=0",
                    "--group=0",
                    "--numeric-owner",
                    "--mtime=@0",
                    "-cf",
                    "-",
                    "-C",
                    str(tree),
                    ".",
                ],
                stdout=subprocess.PIPE,
            )
            subprocess.run(
                ["zstd", "-q", "-f", f"-{args.level}", "-T1", "-o", str(theirs)], stdin=tar.stdout, check=True
            )
            tar.wait()

        def unpack_ours() -> None:
            dest = work / "u1"
            shutil.rmtree(dest, ignore_errors=True)
            install([check_package(ours)], dest)

        def unpack_tar() -> None:
            dest = work / "u2"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            z = subprocess.Popen(["zstd", "-dc", str(theirs)], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-xf", "-", "-C", str(dest)], stdin=z.stdout, check=True)
            z.wait()

        t_pack_ours, t_pack_tar = best(pack_ours, args.repeat), best(pack_tar, args.repeat)
        t_unpack_ours, t_unpack_tar = best(unpack_ours, args.repeat), best(unpack_tar, args.repeat)
        s_ours, s_tar = ours.stat().st_size, theirs.stat().st_size
        print(f"tree: {', '.join(p.name for p in needed)}: {len(manifest)} entries, {size:,} bytes")
        print(f"zstd level {args.level}, best of {args.repeat}")
        print(f"{'':14}{'pkgrepo':>12}{'tar+zstd':>12}{'ratio':>8}")
        print(f"{'pack (s)':14}{t_pack_ours:12.3f}{t_pack_tar:12.3f}{t_pack_ours / t_pack_tar:8.2f}")
        print(
            f"{'unpack (s)':14}{t_unpack_ours:12.3f}{t_unpack_tar:12.3f}{t_unpack_ours / t_unpack_tar:8.2f}"
        )
        print(f"{'size (bytes)':14}{s_ours:12,}{s_tar:12,}{s_ours / s_tar:8.3f}")
        print("unpack by pkgrepo includes verifying every file's sha256 against the manifest")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
