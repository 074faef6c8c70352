"""pkgrepo.graph against networkx, the reference, on random graphs."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgrepo.graph import dependency_order, find_cycle

GRAPHS = st.dictionaries(
    st.sampled_from("abcdefgh"), st.sets(st.sampled_from("abcdefgh"), max_size=4), min_size=1
)


def reference(succ: dict[str, set[str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(succ)
    g.add_edges_from((k, t) for k, ts in succ.items() for t in ts)
    return g


@settings(max_examples=300, deadline=None)
@given(GRAPHS)
def test_dependency_order_matches_networkx_condensation(succ):
    g = reference(succ)
    g.remove_edges_from(nx.selfloop_edges(g))
    cond = nx.condensation(g)
    members = {n: sorted(cond.nodes[n]["members"]) for n in cond.nodes}
    order = nx.lexicographical_topological_sort(cond.reverse(copy=True), key=lambda n: members[n][0])
    assert dependency_order(succ) == [members[n] for n in order]


@settings(max_examples=300, deadline=None)
@given(GRAPHS)
def test_find_cycle_finds_a_real_cycle_exactly_when_there_is_one(succ):
    cycle = find_cycle(succ)
    try:
        nx.find_cycle(reference(succ))
        has_cycle = True
    except nx.NetworkXNoCycle:
        has_cycle = False
    assert (cycle is not None) == has_cycle
    if cycle:
        assert cycle[0] == cycle[-1] and len(set(cycle[:-1])) == len(cycle) - 1
        assert all(b in succ[a] for a, b in itertools.pairwise(cycle))
