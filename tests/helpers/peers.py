"""apt and libsolv, run for real on the same Debian index, for comparison.

Both peers read only the bookworm main list (the one the tests give pkgrepo),
through a private apt sources file and a plain copy of the Packages file.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path

LISTS = Path("/var/lib/apt/lists")
MAIN = next(iter(sorted(LISTS.glob("*_debian_dists_bookworm_main_binary-amd64_Packages*"))), None)

SOLV = r"""
import sys, time, solv
start = time.time()
pool = solv.Pool(); pool.setdisttype(solv.Pool.DISTTYPE_DEB); pool.setarch("amd64")
repo = pool.add_repo("main"); fp = solv.xfopen(sys.argv[1]); repo.add_debpackages(fp); fp.close()
pool.installed = pool.add_repo("installed"); pool.addfileprovides(); pool.createwhatprovides()
jobs = []
for name in sys.argv[2:]:
    jobs += pool.select(name, solv.Selection.SELECTION_NAME).jobs(solv.Job.SOLVER_INSTALL)
solver = pool.Solver(); solver.set_flag(solv.Solver.SOLVER_FLAG_IGNORE_RECOMMENDED, 1)
if solver.solve(jobs):
    sys.exit("libsolv: problems")
for s in solver.transaction().newsolvables():
    print(s.name, s.evr, s.lookup_num(solv.SOLVABLE_INSTALLSIZE))
print("seconds", time.time() - start)
"""


@cache
def apt_config() -> list[str]:
    """apt options that make it see only bookworm main and an empty system."""
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-apt-"))
    (work / "status").write_text("")
    parts = work / "sources.list.d"
    parts.mkdir()
    system = Path("/etc/apt/sources.list.d/debian.sources").read_text().split("\n\n")[0]
    text = re.sub(r"(?m)^Suites:.*$", "Suites: bookworm", system)
    text = re.sub(r"(?m)^Components:.*$", "Components: main", text)
    (parts / "main.sources").write_text(text + "\n")
    return [
        "-o",
        f"Dir::State::status={work / 'status'}",
        "-o",
        "Dir::Etc::SourceList=/dev/null",
        "-o",
        f"Dir::Etc::SourceParts={parts}",
        "-o",
        "APT::Install-Recommends=false",
        "-o",
        "APT::Install-Suggests=false",
    ]


def apt_simulate(args: list[str]) -> dict[str, str]:
    """`apt-get -s install ARGS` on an empty system: {name: version} it would install."""
    proc = subprocess.run(["apt-get", "-s", *apt_config(), "install", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"apt-get refused: {proc.stderr.strip() or proc.stdout[-500:]}")
    return dict(re.findall(r"^Inst (\S+) \((\S+)", proc.stdout, re.M))


@cache
def plain_packages() -> Path:
    assert MAIN is not None
    out = Path(tempfile.mkdtemp(prefix="pkgrepo-solv-")) / "Packages"
    from pkgrepo.resolve.debian import read_index_bytes

    out.write_bytes(read_index_bytes(MAIN))
    return out


def libsolv(roots: list[str]) -> tuple[dict[str, str], int, float]:
    """libsolv (Debian's python3-solv) on the same index: ({name: version}, bytes, load+solve seconds)."""
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", SOLV, str(plain_packages()), *roots],
        capture_output=True,
        text=True,
        check=True,
    )
    chosen, size, seconds = {}, 0, 0.0
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[0] == "seconds":
            seconds = float(parts[1])
        else:
            chosen[parts[0]] = parts[1]
            size += int(parts[2])
    return chosen, size, seconds
