"""The minimizer on the real Debian bookworm index, checked by apt itself and against libsolv."""

from __future__ import annotations

import json

import pytest

from pkgrepo.paths import default_cache
from pkgrepo.resolve.debian import DebianIndex
from tests.helpers.cli import run_cli
from tests.helpers.peers import MAIN, apt_simulate, libsolv

pytestmark = pytest.mark.needs_apt_lists

ROOTS = [
    ["bash"],
    ["coreutils"],
    ["python3"],
    ["nginx"],
    ["git"],
    ["openssh-client"],
    ["bash", "curl"],
    ["perl", "python3", "make"],
]


@pytest.fixture(scope="module")
def index() -> DebianIndex:
    return DebianIndex([MAIN], default_cache() / "index")


def size_of(index: DebianIndex, chosen: dict[str, str]) -> int:
    total = 0
    for name, version in chosen.items():
        (pkg,) = [p for p in index.providers(name) if p.name == name and p.version == version]
        total += pkg.installed_size
    return total


@pytest.mark.parametrize("roots", ROOTS, ids=["+".join(r) for r in ROOTS])
def test_closure_is_complete_and_no_larger_than_apt_or_libsolv(index: DebianIndex, roots: list[str]):
    proc = run_cli("resolve", "--index", f"debian:{MAIN}", "--json", *roots, check=True)
    result = json.loads(proc.stdout)
    assert result["optimal"] is True
    ours = {p["name"]: p["version"] for p in result["packages"]}
    assert result["installed_size"] == sum(p["installed_size"] for p in result["packages"])
    # apt accepts the closure as complete: installing exactly it adds nothing and drops nothing.
    assert apt_simulate([f"{n}={v}" for n, v in sorted(ours.items())]) == ours
    apt_own = apt_simulate(roots)
    _solv_own, solv_size, _ = libsolv(roots)
    assert result["installed_size"] <= size_of(index, apt_own)
    assert result["installed_size"] <= solv_size
    assert set(roots) <= set(ours)


def test_bash_is_smaller_than_libsolv(index: DebianIndex):
    # The motivating case: libsolv pulls 23 packages for bash, apt 8.
    proc = run_cli("resolve", "--index", f"debian:{MAIN}", "--json", "bash", check=True)
    result = json.loads(proc.stdout)
    solv_own, solv_size, _ = libsolv(["bash"])
    assert len(result["packages"]) <= 8 < len(solv_own)
    assert result["installed_size"] < solv_size


def test_unknown_name_suggests(index: DebianIndex):
    proc = run_cli("resolve", "--index", f"debian:{MAIN}", "bsah")
    assert proc.returncode == 2
    assert "bsah: no such package" in proc.stderr and "did you mean bash" in proc.stderr


def test_unsatisfiable_version_names_it(index: DebianIndex):
    proc = run_cli("resolve", "--index", f"debian:{MAIN}", "bash (>= 99)")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "bash>=99: no version satisfies it" in line and "5.2.15" in line


def test_dev_profile_and_diff(index: DebianIndex):
    proc = run_cli(
        "resolve", "--index", f"debian:{MAIN}", "--diff", "prod", "dev", "--json", "python3", check=True
    )
    diff = json.loads(proc.stdout)
    added = {p["name"] for p in diff["added"]}
    assert {"apt", "coreutils"} <= added or {"apt"} <= added
    assert diff["added_size"] == diff["dev"]["installed_size"] - diff["prod"]["installed_size"] > 0
    prod = {p["name"] for p in diff["prod"]["packages"]}
    assert "apt" not in prod and "python3" in prod
    text = run_cli(
        "resolve", "--index", f"debian:{MAIN}", "--diff", "prod", "dev", "python3", check=True
    ).stdout
    assert "dev adds" in text and "+ apt " in text


def test_why_and_explain_size(index: DebianIndex):
    proc = run_cli("why", "--index", f"debian:{MAIN}", "curl", "--target", "libc6", check=True)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("request -> curl=")
    assert lines[-1].endswith(tuple(p.key for p in index.providers("libc6")))
    assert all(" depends on " in line for line in lines[1:])
    proc = run_cli("resolve", "--index", f"debian:{MAIN}", "curl", "--explain-size", "--json", check=True)
    data = json.loads(proc.stdout)
    weights = {w["package"].split("=")[0]: w for w in data["explain_size"]}
    # dropping curl itself removes everything only curl needs, libcurl4 among them
    assert any(k.startswith("libcurl4=") for k in weights["curl"]["removes"])
    assert weights["curl"]["installed_size"] >= weights["libcurl4"]["installed_size"]
    order = [k.split("=")[0] for group in data["install_order"] for k in group]
    assert order.index("libcurl4") < order.index("curl")
