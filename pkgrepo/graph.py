"""Small graph algorithms over `{node: set(successors)}` dictionaries.

Written out rather than taken from networkx because `resolve` and a no-op
`build` run them on every call, and importing networkx alone costs more than
the work (110-220 ms). networkx stays the reference: the tests compare these
against it, and the rarer analyses (dominators for `--explain-size`) use it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Set


def components(succ: Mapping[str, Set[str]]) -> list[list[str]]:
    """Strongly connected components (iterative Tarjan), each sorted; successors before predecessors."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for start in sorted(succ):
        if start in index:
            continue
        enter(start)
        work = [(start, iter(sorted(succ.get(start, ()))))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                    work.append((child, iter(sorted(succ.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                out.append(sorted(comp))
    return out


def dependency_order(succ: Mapping[str, Set[str]]) -> list[list[str]]:
    """Groups of nodes, each node after everything it points to; a cycle is one group.

    Among groups ready at the same time the one whose first member sorts first
    goes first (networkx's lexicographical_topological_sort of the reversed condensation)."""
    comps = components(succ)
    comp_of = {n: i for i, c in enumerate(comps) for n in c}
    waiting = [0] * len(comps)
    dependents: list[set[int]] = [set() for _ in comps]
    for n, targets in succ.items():
        for t in targets:
            a, b = comp_of[n], comp_of[t]
            if a != b and a not in dependents[b]:
                dependents[b].add(a)
                waiting[a] += 1
    ready = [(comps[i][0], i) for i in range(len(comps)) if waiting[i] == 0]
    heapq.heapify(ready)
    groups = []
    while ready:
        _, i = heapq.heappop(ready)
        groups.append(comps[i])
        for d in dependents[i]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (comps[d][0], d))
    return groups


def find_cycle(succ: Mapping[str, Set[str]]) -> list[str] | None:
    """One cycle as a list of nodes (the first repeated at the end), or None."""
    for comp in components(succ):
        members = set(comp)
        start = comp[0]
        if len(comp) == 1 and start not in succ.get(start, ()):
            continue
        path, seen, node = [start], {start}, start
        while True:
            node = min(t for t in succ[node] if t in members)
            if node in seen:
                return [*path[path.index(node) :], node]
            path.append(node)
            seen.add(node)
    return None
