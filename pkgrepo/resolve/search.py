"""An exact pure-Python weighted minimizer: the fallback where PySAT cannot be installed.

PySAT's solvers are C++; inside our own dev images (musl, no C++ runtime) the
package manager has only this. Same problem as the MaxSAT encoding in
`minimize.py`: hard CNF clauses over one variable per package, each true
variable costing its weight; find the cheapest model. Depth-first branch and
bound with unit propagation: an unsatisfied clause is branched on its
literals (cheapest first, each later branch excluding the earlier ones, so no
model is visited twice), every variable left unassigned at a leaf is false,
and a branch whose cost already reaches the best one is cut. Exponential in
the worst case, like any exact method; past the deadline the best model found
so far is returned, marked not optimal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pkgrepo.errors import PkgrepoError


class _Deadline(Exception):
    pass


def cheapest_model(
    clauses: Sequence[Sequence[int]], weights: Sequence[int], time_limit: float
) -> tuple[set[int], bool] | None:
    """(true variables, proven optimal) of the cheapest model, or None when there is none.

    Variables are 1..len(weights); `weights[v - 1]` is what making `v` true costs."""
    deadline = time.monotonic() + time_limit
    watch: dict[int, list[int]] = {}
    for i, clause in enumerate(clauses):
        for lit in clause:
            watch.setdefault(abs(lit), []).append(i)
    best: list[tuple[int, set[int]] | None] = [None]
    steps = [0]

    def value(assign: dict[int, bool], lit: int) -> bool | None:
        v = assign.get(abs(lit))
        return None if v is None else (v if lit > 0 else not v)

    def propagate(assign: dict[int, bool], todo: list[int]) -> bool:
        """Set the literals in `todo` true and everything they force; False on a conflict."""
        while todo:
            lit = todo.pop()
            known = value(assign, lit)
            if known is True:
                continue
            if known is False:
                return False
            assign[abs(lit)] = lit > 0
            for ci in watch.get(abs(lit), ()):
                open_lits = []
                for other in clauses[ci]:
                    val = value(assign, other)
                    if val is True:
                        break
                    if val is None:
                        open_lits.append(other)
                else:
                    if not open_lits:
                        return False
                    if len(open_lits) == 1:
                        todo.append(open_lits[0])
        return True

    def cost(assign: dict[int, bool]) -> int:
        return sum(weights[v - 1] for v, on in assign.items() if on)

    def search(assign: dict[int, bool]) -> None:
        steps[0] += 1
        if steps[0] % 256 == 0 and time.monotonic() > deadline:
            raise _Deadline
        spent = cost(assign)
        if best[0] is not None and spent >= best[0][0]:
            return
        open_clause = None
        for clause in clauses:
            vals = [value(assign, lit) for lit in clause]
            if True in vals:
                continue
            open_clause = [lit for lit, val in zip(clause, vals, strict=True) if val is None]
            # a clause whose open literals are all negative is met by the leaf's default (false)
            if any(lit > 0 for lit in open_clause):
                break
            open_clause = None
        if open_clause is None:
            best[0] = (spent, {v for v, on in assign.items() if on})
            return
        ordered = sorted(open_clause, key=lambda lit: (weights[abs(lit) - 1] if lit > 0 else 0, lit))
        excluded: list[int] = []
        for lit in ordered:
            trial = dict(assign)
            if propagate(trial, [lit, *(-e for e in excluded)]):
                search(trial)
            excluded.append(lit)

    start: dict[int, bool] = {}
    if not propagate(start, [c[0] for c in clauses if len(c) == 1]):
        return None
    try:
        search(start)
    except _Deadline:
        if best[0] is None:
            raise PkgrepoError(
                f"no installable set found within the time limit ({time_limit:g}s); raise --time-limit"
            ) from None
        return best[0][1], False
    return None if best[0] is None else (best[0][1], True)
