"""Explanations of a result: why a package is there, what each one pulls in, install order.

All three read the graph of the chosen set, an edge from each package to the
chosen packages that meet one of its dependency clauses.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkgrepo.resolve.deps import Dep
from pkgrepo.resolve.minimize import Result
from pkgrepo.resolve.model import clause_text

if TYPE_CHECKING:
    import networkx as nx

TOP = "\0request"


def _edges(result: Result) -> dict[str, set[str]]:
    """Each chosen package to the chosen packages that meet one of its clauses (no self loops)."""
    out: dict[str, set[str]] = {p.key: set() for p in result.packages}
    for k, clauses in result.edges.items():
        for _clause, targets in clauses:
            out.setdefault(k, set()).update(t for t in targets if t != k)
    return out


def graph(result: Result, root_keys: list[str]) -> nx.DiGraph:
    import networkx as nx  # ~110 ms to import: only the commands that explain sizes pay it

    g = nx.DiGraph()
    g.add_nodes_from(p.key for p in result.packages)
    g.add_node(TOP)
    for k in root_keys:
        g.add_edge(TOP, k)
    for k, targets in _edges(result).items():
        g.add_edges_from((k, t) for t in targets)
    return g


def why(result: Result, root_keys: list[str], target: str) -> list[tuple[str, tuple[Dep, ...] | None, str]]:
    """The shortest chain from a root to `target` (a package name or key): (from, clause, to) steps."""
    by_key = result.by_key()
    goal = {k for k, p in by_key.items() if target in (p.key, p.name)}
    if not goal:
        return []
    prev: dict[str, tuple[str, tuple[Dep, ...]] | None] = {k: None for k in root_keys}
    queue = deque(sorted(root_keys))
    while queue:
        k = queue.popleft()
        if k in goal:
            steps = []
            while prev[k] is not None:
                parent, clause = prev[k]  # type: ignore[misc]
                steps.append((parent, clause, k))
                k = parent
            steps.append((TOP, None, k))
            return list(reversed(steps))
        for clause, targets in result.edges.get(k, []):
            for t in targets:
                if t not in prev:
                    prev[t] = (k, clause)
                    queue.append(t)
    return []


@dataclass
class Weight:
    key: str
    removes: list[str]  # the package itself and everything only it pulls in
    size: int


def dominated_weights(result: Result, root_keys: list[str]) -> list[Weight]:
    """From the dominator tree: what dropping each package alone would remove, largest first."""
    g = graph(result, root_keys)
    idom = nx.immediate_dominators(g, TOP)
    children: dict[str, list[str]] = {}
    for node, dom in idom.items():
        if node != dom:
            children.setdefault(dom, []).append(node)
    sizes = {p.key: p.installed_size for p in result.packages}
    out = []
    for key in sizes:
        sub, stack = [], [key]
        while stack:
            n = stack.pop()
            sub.append(n)
            stack.extend(children.get(n, []))
        out.append(Weight(key, sorted(sub), sum(sizes[n] for n in sub)))
    out.sort(key=lambda w: (-w.size, w.key))
    return out


def _components(succ: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (iterative Tarjan), each sorted.

    Written out rather than taken from networkx, whose import alone would cost
    every `resolve` more than its solver does."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, iter(sorted(succ[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
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


def install_order(result: Result) -> tuple[list[list[str]], list[list[str]]]:
    """Groups to install in order (dependencies first; a cycle is one group), and the cycles.

    Among groups that are ready at the same time, the one whose first member sorts first goes first."""
    succ = _edges(result)
    comps = _components(succ)
    comp_of = {n: i for i, c in enumerate(comps) for n in c}
    waiting = [0] * len(comps)  # dependencies not yet installed, per group
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
    return groups, [m for m in groups if len(m) > 1]


def describe_step(step: tuple[str, tuple[Dep, ...] | None, str]) -> str:
    parent, clause, child = step
    if clause is None:
        return f"request -> {child}"
    return f"{parent} depends on {clause_text(clause)} -> {child}"
