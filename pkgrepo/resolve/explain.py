"""Explanations of a result: why a package is there, what each one pulls in, install order.

All three read the graph of the chosen set, an edge from each package to the
chosen packages that meet one of its dependency clauses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkgrepo.graph import dependency_order
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
    import networkx as nx

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


def install_order(result: Result) -> tuple[list[list[str]], list[list[str]]]:
    """Groups to install in order (dependencies first; a cycle is one group), and the cycles."""
    groups = dependency_order(_edges(result))
    return groups, [m for m in groups if len(m) > 1]


def describe_step(step: tuple[str, tuple[Dep, ...] | None, str]) -> str:
    parent, clause, child = step
    if clause is None:
        return f"request -> {child}"
    return f"{parent} depends on {clause_text(clause)} -> {child}"
