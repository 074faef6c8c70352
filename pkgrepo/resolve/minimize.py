"""The exact minimizer: the smallest installable closure of a request.

1. Reach: every package any alternative of any dependency can lead to.
2. Force: packages without a choice (a root or a dependency with one
   candidate, from a forced package). When the forced set is already
   complete and consistent, it is the unique minimum: no solver is needed.
3. Otherwise solve exactly as weighted MaxSAT with PySAT's RC2 (or, where
   PySAT cannot be installed, the pure-Python branch and bound of `search.py`) (a
   maintained, core-guided MaxSAT solver whose answer is optimal when it
   returns; it imports in milliseconds, which matters for a command whose
   whole run is a fraction of a second): one variable per reachable package;
   every chosen package has each dependency clause met; conflicting packages
   and two versions of one name are never chosen together; minimise total
   installed size, then the number of packages. Past the time limit the
   search is interrupted and a valid set is returned, marked not optimal.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from pkgrepo.errors import BadInput
from pkgrepo.resolve.deps import Dep
from pkgrepo.resolve.model import Candidates, Index, Package, clause_text
from pkgrepo.suggest import suggest


@dataclass
class Result:
    roots: list[Dep]
    packages: list[Package]  # sorted by name
    optimal: bool
    solver: str  # "forced" (no choice), "maxsat" (PySAT) or "search" (pure Python)
    seconds: float
    # for each chosen package: (clause, the chosen packages that meet it)
    edges: dict[str, list[tuple[tuple[Dep, ...], list[str]]]] = field(default_factory=dict)

    @property
    def installed_size(self) -> int:
        return sum(p.installed_size for p in self.packages)

    def by_key(self) -> dict[str, Package]:
        return {p.key: p for p in self.packages}

    def root_keys(self, candidates: Candidates) -> list[str]:
        chosen = {p.key for p in self.packages}
        return sorted({q.key for r in self.roots for q in candidates(r) if q.key in chosen})


class Unsatisfiable(BadInput):
    """No installable set meets the request."""


def _clause_candidates(clause: Iterable[Dep], cand: Candidates) -> list[Package]:
    seen: dict[str, Package] = {}
    for dep in clause:
        for p in cand(dep):
            seen.setdefault(p.key, p)
    return list(seen.values())


def _walk(start: Iterable[Package], cand: Candidates, forced_only: bool) -> dict[str, Package]:
    """Packages reachable from `start`; with `forced_only`, through dependencies with one candidate only."""
    found: dict[str, Package] = {}
    queue = deque(start)
    while queue:
        p = queue.popleft()
        if p.key in found:
            continue
        found[p.key] = p
        for clause in p.depends:
            options = _clause_candidates(clause, cand)
            if not forced_only or len(options) == 1:
                queue.extend(q for q in options if q.key not in found)
    return found


def _reach(roots: list[Dep], cand: Candidates) -> dict[str, Package]:
    return _walk((p for r in roots for p in cand(r)), cand, forced_only=False)


def _forced(roots: list[Dep], cand: Candidates) -> dict[str, Package]:
    return _walk((c[0] for r in roots if len(c := cand(r)) == 1), cand, forced_only=True)


def _consistent(chosen: dict[str, Package], roots: list[Dep], cand: Candidates) -> bool:
    names = [p.name for p in chosen.values()]
    if len(names) != len(set(names)):
        return False
    for r in roots:
        if not any(p.key in chosen for p in cand(r)):
            return False
    for p in chosen.values():
        for clause in p.depends:
            if not any(q.key in chosen for q in _clause_candidates(clause, cand)):
                return False
        for dep in p.conflicts:
            if any(q.key in chosen and q.key != p.key for q in cand(dep)):
                return False
    return True


def _encode(
    reached: dict[str, Package], forced: dict[str, Package], roots: list[Dep], cand: Candidates
) -> tuple[list[str], list[list[int]], list[int]]:
    """(package keys, hard clauses, the weight of choosing each key): variable i + 1 is keys[i]."""
    keys = sorted(reached)
    var = {k: i + 1 for i, k in enumerate(keys)}
    hard: list[list[int]] = [[var[k]] for k in sorted(forced)]
    hard += [sorted(var[p.key] for p in cand(r)) for r in roots]
    by_name: dict[str, list[int]] = {}
    conflicts: set[tuple[int, int]] = set()
    for k in keys:
        p = reached[k]
        by_name.setdefault(p.name, []).append(var[k])
        for clause in p.depends:
            hard.append([-var[k], *sorted(var[q.key] for q in _clause_candidates(clause, cand))])
        for dep in p.conflicts:
            conflicts |= {
                tuple(sorted((var[k], var[q.key]))) for q in cand(dep) if q.key != k and q.key in var
            }
    hard += [[-a, -b] for a, b in sorted(conflicts)]
    for group in by_name.values():  # one version of a name
        hard += [[-a, -b] for i, a in enumerate(group) for b in group[i + 1 :]]
    scale = len(keys) + 1  # size first, then fewer packages
    return keys, hard, [reached[k].installed_size * scale + 1 for k in keys]


def solver_name() -> str:
    """ "maxsat" (PySAT's RC2) where PySAT imports; else the pure-Python "search"."""
    try:
        import pysat  # noqa: F401
    except ImportError:
        return "search"
    return "maxsat"


def _solve(
    keys: list[str], hard: list[list[int]], weights: list[int], time_limit: float, solver: str
) -> tuple[set[str], bool] | None:
    """The cheapest model's keys and whether it is proven optimal; None when no installable set exists."""
    if solver == "search":
        from pkgrepo.resolve.search import cheapest_model

        found = cheapest_model(hard, weights, time_limit)
        return None if found is None else ({keys[v - 1] for v in found[0]}, found[1])
    from pysat.examples.rc2 import RC2Stratified
    from pysat.formula import WCNF

    wcnf = WCNF()
    for c in hard:
        wcnf.append(c)
    for i, w in enumerate(weights):
        wcnf.append([-(i + 1)], weight=w)
    with RC2Stratified(wcnf) as rc2:
        timer = threading.Timer(time_limit, rc2.interrupt)
        timer.start()
        try:
            model = rc2.compute(expect_interrupt=True)
        finally:
            timer.cancel()
        interrupted = model is None and rc2.interrupted
    if model is not None:
        return {keys[v - 1] for v in model if 0 < v <= len(keys)}, True
    if not interrupted:
        return None
    return _any_solution(hard, keys)


def _any_solution(hard: list[list[int]], keys: list[str]) -> tuple[set[str], bool] | None:
    """Out of time: a valid set that installs as little as the SAT solver's phases steer it to."""
    from pysat.solvers import Solver

    with Solver(name="g3", bootstrap_with=hard) as sat:
        sat.set_phases([-(i + 1) for i in range(len(keys))])
        if not sat.solve():
            return None
        return {keys[v - 1] for v in sat.get_model() if 0 < v <= len(keys)}, False


def _edges(
    chosen: dict[str, Package], cand: Candidates
) -> dict[str, list[tuple[tuple[Dep, ...], list[str]]]]:
    edges = {}
    for k, p in chosen.items():
        edges[k] = [
            (clause, sorted(q.key for q in _clause_candidates(clause, cand) if q.key in chosen))
            for clause in p.depends
        ]
    return edges


def check_roots(index: Index, roots: list[Dep], cand: Candidates) -> None:
    for r in roots:
        if cand(r):
            continue
        same = index.providers(r.name)
        if same:
            versions = ", ".join(sorted({p.version for p in same})[:5])
            raise Unsatisfiable(f"{r}: no version satisfies it in {index.label} (available: {versions})")
        raise BadInput(f"{r.name}: no such package in {index.label}{suggest(r.name, index.names())}")


def explain_unsatisfiable(roots: list[Dep], reached: dict[str, Package], cand: Candidates) -> str:
    """A few lines naming the root, the clause and why each candidate was rejected."""
    forced = _forced(roots, cand)
    for p in sorted(forced.values(), key=lambda p: p.key):
        for clause in p.depends:
            if not _clause_candidates(clause, cand):
                why = []
                for dep in clause:
                    versions = sorted({q.version for q in cand.index.providers(dep.name)})
                    why.append(
                        f"{dep.name}: "
                        + (f"only {', '.join(versions[:4])}" if versions else "not in the index")
                    )
                root = next((str(r) for r in roots if p in cand(r)), str(roots[0]))
                return f"{root}: {p.name} {p.version} depends on {clause_text(clause)}, which nothing satisfies ({'; '.join(why)})"
        for dep in p.conflicts:
            for q in cand(dep):
                if q.key in forced and q.key != p.key:
                    return f"{', '.join(map(str, roots))}: {p.key} and {q.key} are both required but conflict ({dep})"
    names: dict[str, list[str]] = {}
    for p in forced.values():
        names.setdefault(p.name, []).append(p.version)
    for name, versions in names.items():
        if len(versions) > 1:
            return f"{', '.join(map(str, roots))}: needs {name} at versions {' and '.join(sorted(versions))} at once"
    return (
        f"{', '.join(map(str, roots))}: every choice among the {len(reached)} reachable packages breaks a "
        "dependency or a conflict; try fewer roots or `pkgrepo why` on each"
    )


def minimize(index: Index, roots: list[Dep], time_limit: float = 30.0, solver: str | None = None) -> Result:
    """The smallest installable closure of `roots`; `solver` "maxsat" or "search" (default: the best here)."""
    start = time.monotonic()
    cand = Candidates(index)
    check_roots(index, roots, cand)
    forced = _forced(roots, cand)
    if _consistent(forced, roots, cand):
        chosen, optimal, solver = forced, True, "forced"
    else:
        reached = _reach(roots, cand)
        solver = solver or solver_name()
        solved = _solve(*_encode(reached, forced, roots, cand), time_limit, solver)
        if solved is None:
            raise Unsatisfiable(explain_unsatisfiable(roots, reached, cand))
        keys, optimal = solved
        chosen = {k: reached[k] for k in keys}
    packages = sorted(chosen.values(), key=lambda p: (p.name, p.key))
    return Result(roots, packages, optimal, solver, time.monotonic() - start, _edges(chosen, cand))
