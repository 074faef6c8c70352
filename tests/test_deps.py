"""The dependency vocabulary (`resolve/deps.py`): the one place clauses are taken apart."""

from __future__ import annotations

import pytest

from pkgrepo.errors import BadInput
from pkgrepo.resolve.deps import Dep, is_virtual, meets, parse_dep, parse_provide, provide_name, soname


@pytest.mark.parametrize(
    ("text", "dep"),
    [
        ("zlib", Dep("zlib")),
        ("zlib>=1.3", Dep("zlib", ">=", "1.3")),
        ("hello = 2.12-r1", Dep("hello", "=", "2.12-r1")),
        ("so:libz.so.1", Dep("so:libz.so.1")),
        ("pc:zlib>=1.2", Dep("pc:zlib", ">=", "1.2")),
    ],
)
def test_parse_dep_round_trips(text: str, dep: Dep):
    assert parse_dep(text) == dep
    assert parse_dep(str(dep)) == dep


@pytest.mark.parametrize("text", ["", "a b", ">=1", "zlib>="])
def test_parse_dep_refuses_what_is_no_clause(text: str):
    with pytest.raises(BadInput, match="is not a dependency"):
        parse_dep(text)


def test_provides_and_virtual_names():
    assert parse_provide("pc:zlib=1.3") == ("pc:zlib", "1.3")
    assert provide_name("pc:zlib=1.3") == "pc:zlib" and provide_name("so:libz.so.1") == "so:libz.so.1"
    assert [is_virtual(t) for t in ("so:libc.so", "cmd:sh", "pc:zlib", "zlib", "sox")] == [True] * 3 + [
        False
    ] * 2
    assert soname("so:libz.so.1") == "libz.so.1" and soname("cmd:sh") is None and soname("sox") is None


def test_a_versioned_need_is_met_only_by_a_versioned_provide():
    assert meets(parse_dep("pc:zlib>=1.2"), "zlib-dev", "1.3.1-r0", [("pc:zlib", "1.3.1")])
    assert not meets(parse_dep("pc:zlib>=1.2"), "zlib-dev", "1.3.1-r0", [("pc:zlib", None)])
    assert meets(parse_dep("zlib>=1.3"), "zlib", "1.3.1-r0", [])
    assert not meets(parse_dep("zlib>=1.4"), "zlib", "1.3.1-r0", [])
