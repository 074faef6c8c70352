"""pkgrepo's minimizer beside apt-get -s and libsolv on the real Debian index, in one run.

Usage: python -m benchmarks.resolve [--repeat N] [ROOTSET ...]   (a root set is "bash" or "bash+curl")

For each root set: the closure each tool picks (packages, bytes) and its time.
pkgrepo's time is the wall time of a whole `pkgrepo resolve --json` process,
from process start to JSON (its compiled index already cached, as after the
first run); libsolv's is load + solve inside one python3-solv process, given
the Packages file already decompressed; apt's is the whole `apt-get -s`.
Also pkgrepo's peak memory. Targets (issue 4): median time no worse than
libsolv's, memory under 500 MB, never a larger closure than either peer.
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

from pkgrepo.paths import default_cache
from pkgrepo.resolve.debian import DebianIndex
from tests.helpers.peers import MAIN, apt_simulate, libsolv

DEFAULT = [
    "bash",
    "coreutils",
    "python3",
    "nginx",
    "git",
    "openssh-client",
    "bash+curl",
    "perl+python3+make",
    "postgresql",
    "vim",
]


def run_pkgrepo(roots: list[str]) -> tuple[dict, float, int]:
    import json

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pkgrepo", "resolve", "--index", f"debian:{MAIN}", "--json", *roots],
            stdout=out,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"pkgrepo resolve {' '.join(roots)} failed")
        out.seek(0)
        return json.loads(out.read()), seconds, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rootsets", nargs="*", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each timing")
    args = ap.parse_args()
    if MAIN is None:
        raise SystemExit("no bookworm main Packages list: run apt-get update")
    index = DebianIndex([MAIN], default_cache() / "index")

    def size(chosen: dict[str, str]) -> int:
        return sum(
            p.installed_size
            for n, v in chosen.items()
            for p in index.providers(n)
            if p.name == n and p.version == v
        )

    # Bytecode as an installed wheel has it (pip compiles at install time; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would otherwise recompile pkgrepo's modules on every run).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parent.parent / "pkgrepo")],
        check=True,
    )
    run_pkgrepo(["bash"])  # compile the index cache once, outside the timings
    rows, ours_t, solv_t, peaks = [], [], [], []
    print(f"{'roots':22}{'pkgrepo':>22}{'apt-get -s':>22}{'libsolv':>22}{'t ratio':>9}{'B ratio':>9}")
    for rootset in args.rootsets:
        roots = rootset.split("+")
        runs = [run_pkgrepo(roots) for _ in range(args.repeat)]
        result = runs[0][0]
        t_ours = min(r[1] for r in runs)
        peaks.append(max(r[2] for r in runs))
        start = time.perf_counter()
        apt = apt_simulate(roots)
        t_apt = time.perf_counter() - start
        solv_runs = [libsolv(roots) for _ in range(args.repeat)]
        solv, solv_bytes, _ = solv_runs[0]
        t_solv = min(r[2] for r in solv_runs)
        ours_b, apt_b = result["installed_size"], size(apt)
        ours_t.append(t_ours)
        solv_t.append(t_solv)
        flag = "" if ours_b <= min(apt_b, solv_bytes) and result["optimal"] else "  <-- check"
        print(
            f"{rootset:22}"
            f"{len(result['packages']):4} {ours_b / 2**20:7.1f}M {t_ours:6.3f}s"
            f"{len(apt):4} {apt_b / 2**20:7.1f}M {t_apt:6.3f}s"
            f"{len(solv):4} {solv_bytes / 2**20:7.1f}M {t_solv:6.3f}s"
            f"{t_ours / t_solv:9.2f}{ours_b / min(apt_b, solv_bytes):9.3f}{flag}"
        )
        rows.append((rootset, ours_b, apt_b, solv_bytes))
    print(
        f"median time: pkgrepo {statistics.median(ours_t):.3f}s, libsolv {statistics.median(solv_t):.3f}s, "
        f"ratio {statistics.median(ours_t) / statistics.median(solv_t):.2f}"
    )
    print(f"pkgrepo peak memory: {max(peaks) / 2**20:.0f} MiB")
    larger = [r[0] for r in rows if r[1] > min(r[2], r[3])]
    print(
        "never larger than apt or libsolv" if not larger else f"LARGER than a peer for: {', '.join(larger)}"
    )


if __name__ == "__main__":
    main()
