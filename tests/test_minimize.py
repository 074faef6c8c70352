"""Property tests: on random small universes the minimizer's answer is valid and equals brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pkgrepo.errors import BadInput
from pkgrepo.resolve.deps import Dep
from pkgrepo.resolve.explain import install_order, why
from pkgrepo.resolve.minimize import Unsatisfiable, minimize
from pkgrepo.resolve.model import Candidates, Package
from tests.helpers.cli import run_cli


class MemoryIndex:
    label = "memory"

    def __init__(self, packages: list[Package]):
        self.packages = packages

    def providers(self, name: str) -> list[Package]:
        return [p for p in self.packages if p.name == name or any(n == name for n, _v in p.provides)]

    def names(self) -> list[str]:
        return sorted({p.name for p in self.packages})


NAMES = ["a", "b", "c", "d", "e"]
VIRTUAL = ["v", "w"]
VERSIONS = ["1", "2", "3"]


@st.composite
def deps(draw, names=NAMES + VIRTUAL):
    name = draw(st.sampled_from(names))
    if name in VIRTUAL or draw(st.booleans()):
        return Dep(name)
    return Dep(name, draw(st.sampled_from([">=", "<<", "="])), draw(st.sampled_from(VERSIONS)))


@st.composite
def universes(draw):
    idents = draw(
        st.lists(
            st.tuples(st.sampled_from(NAMES), st.sampled_from(VERSIONS)), min_size=1, max_size=9, unique=True
        )
    )
    packages = []
    for name, version in idents:
        clauses = draw(st.lists(st.lists(deps(), min_size=1, max_size=3).map(tuple), max_size=3))
        provides = draw(
            st.lists(st.tuples(st.sampled_from(VIRTUAL), st.sampled_from([None, *VERSIONS])), max_size=1)
        )
        conflicts = draw(st.lists(deps(), max_size=1))
        size = draw(st.integers(0, 5000))
        packages.append(
            Package(
                f"{name}={version}", name, version, size, tuple(clauses), tuple(conflicts), tuple(provides)
            )
        )
    roots = draw(st.lists(deps(NAMES), min_size=1, max_size=2))
    return packages, roots


def valid(chosen: list[Package], roots: list[Dep], index: MemoryIndex) -> bool:
    cand = Candidates(index)
    keys = {p.key for p in chosen}
    if len({p.name for p in chosen}) != len(chosen):
        return False
    if not all(any(q.key in keys for q in cand(r)) for r in roots):
        return False
    for p in chosen:
        if not all(any(q.key in keys for d in clause for q in cand(d)) for clause in p.depends):
            return False
        if any(q.key in keys and q.key != p.key for d in p.conflicts for q in cand(d)):
            return False
    return True


def brute_force(packages: list[Package], roots: list[Dep], index: MemoryIndex):
    best = None
    for n in range(len(packages) + 1):
        for combo in itertools.combinations(packages, n):
            if valid(list(combo), roots, index):
                cost = (sum(p.installed_size for p in combo), len(combo))
                best = cost if best is None or cost < best else best
    return best


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(universes())
def test_minimal_and_valid(case):
    packages, roots = case
    index = MemoryIndex(packages)
    best = brute_force(packages, roots, index)
    try:
        result = minimize(index, roots)
    except Unsatisfiable:
        assert best is None
        return
    except BadInput as e:  # an unknown root is bad input too; any other exception is a bug
        assert best is None, e
        return
    assert best is not None
    assert valid(result.packages, roots, index)
    assert (result.installed_size, len(result.packages)) == best
    assert result.optimal
    groups, _cycles = install_order(result)
    assert sorted(k for g in groups for k in g) == sorted(p.key for p in result.packages)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(universes())
def test_pure_python_search_agrees_with_maxsat(case):
    """The fallback of dev images (no PySAT there) finds the same minimum as RC2 and brute force."""
    packages, roots = case
    index = MemoryIndex(packages)
    outcomes = []
    for solver in ("maxsat", "search"):
        try:
            r = minimize(index, roots, solver=solver)
        except (Unsatisfiable, BadInput) as e:
            outcomes.append(type(e).__name__)
            continue
        assert valid(r.packages, roots, index) and r.optimal
        assert r.solver in ("forced", solver)
        outcomes.append((r.installed_size, len(r.packages)))
    assert outcomes[0] == outcomes[1]
    best = brute_force(packages, roots, index)
    if best is not None:
        assert outcomes[1] == best


def pkg(name, version="1", size=1, depends=(), conflicts=(), provides=()):
    return Package(
        f"{name}={version}",
        name,
        version,
        size,
        tuple(tuple(c) for c in depends),
        tuple(conflicts),
        tuple(provides),
    )


def test_chooses_the_smaller_alternative_and_explains():
    index = MemoryIndex(
        [
            pkg("app", depends=[[Dep("mta")], [Dep("libc")]]),
            pkg("big-mta", size=900, provides=[("mta", None)], depends=[[Dep("libc")]]),
            pkg("small-mta", size=10, provides=[("mta", None)], depends=[[Dep("libc")], [Dep("helper")]]),
            pkg("helper", size=5, depends=[[Dep("libc")]]),
            pkg("libc", size=100, depends=[[Dep("libgcc")]]),
            pkg("libgcc", size=20, depends=[[Dep("libc")]]),
        ]
    )
    result = minimize(index, [Dep("app")])
    assert [p.name for p in result.packages] == ["app", "helper", "libc", "libgcc", "small-mta"]
    assert result.optimal and result.solver == "maxsat"
    steps = why(result, result.root_keys(Candidates(index)), "helper")
    assert [(a, b) for a, _c, b in steps] == [
        ("\0request", "app=1"),
        ("app=1", "small-mta=1"),
        ("small-mta=1", "helper=1"),
    ]
    groups, cycles = install_order(result)
    assert cycles == [["libc=1", "libgcc=1"]]
    assert groups.index(["libc=1", "libgcc=1"]) < groups.index(["helper=1"]) < groups.index(["small-mta=1"])


def test_forced_closure_needs_no_solver():
    index = MemoryIndex([pkg("a", depends=[[Dep("b")]]), pkg("b"), pkg("unrelated")])
    result = minimize(index, [Dep("a")])
    assert result.solver == "forced" and result.optimal
    assert [p.name for p in result.packages] == ["a", "b"]


def test_unsatisfiable_names_root_clause_and_reason():
    index = MemoryIndex([pkg("app", depends=[[Dep("lib", ">=", "2")]]), pkg("lib", "1")])
    with pytest.raises(
        Unsatisfiable, match=r"app: app 1 depends on lib>=2, which nothing satisfies \(lib: only 1\)"
    ):
        minimize(index, [Dep("app")])
    index = MemoryIndex(
        [pkg("app", depends=[[Dep("x")], [Dep("y")]]), pkg("x", conflicts=[Dep("y")]), pkg("y")]
    )
    with pytest.raises(Unsatisfiable, match="x=1 and y=1 are both required but conflict"):
        minimize(index, [Dep("app")])


@pytest.mark.parametrize("solver", ["maxsat", "search"])
def test_time_limit_returns_a_valid_set_marked_not_optimal(solver):
    # A weighted vertex cover in disguise (root needs one end of every edge): hard for any exact
    # solver at this size, so the time limit stops the search.
    import random

    rng = random.Random(7)
    edges: set[tuple[int, int]] = set()
    while len(edges) < 500:
        a, b = sorted(rng.sample(range(120), 2))
        edges.add((a, b))
    packages = [pkg("root", depends=[[Dep(f"n{a}"), Dep(f"n{b}")] for a, b in sorted(edges)])]
    packages += [pkg(f"n{i}", size=rng.randint(100, 1000)) for i in range(120)]
    index = MemoryIndex(packages)
    result = minimize(index, [Dep("root")], time_limit=0.5, solver=solver)
    assert result.optimal is False
    assert valid(result.packages, [Dep("root")], index)
    assert result.seconds < 5


def test_native_index_hello_is_hello_plus_musl(built: Path):
    proc = run_cli("resolve", "--index", f"native:{built}", "--json", "hello", check=True)
    import json

    data = json.loads(proc.stdout)
    assert sorted(p["name"] for p in data["packages"]) == ["hello", "musl"]
    assert data["optimal"] is True
    assert data["installed_size"] == sum(p["installed_size"] for p in data["packages"])
    assert data["install_order"] == [
        [f"musl={data['packages'][1]['version']}"],
        [f"hello={data['packages'][0]['version']}"],
    ]


def test_native_dev_profile_adds_a_shell(built: Path):
    proc = run_cli(
        "resolve", "--index", f"native:{built}", "--diff", "prod", "dev", "--json", "hello", check=True
    )
    import json

    diff = json.loads(proc.stdout)
    assert [p["name"] for p in diff["added"]] == ["busybox"]
    proc = run_cli(
        "resolve",
        "--index",
        f"native:{built}",
        "--profile",
        "dev",
        "--dev-extra",
        "zlib-utils",
        "--json",
        "hello",
        check=True,
    )
    names = sorted(p["name"] for p in json.loads(proc.stdout)["packages"])
    assert names == ["hello", "musl", "zlib", "zlib-utils"]
