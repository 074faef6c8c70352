"""Index and CLI text -> parsers (finding 16): parse or BadInput, never another exception.

The version comparison is checked against apt's own (apt_pkg, from Debian's
python3-apt, run by the system Python) on every version string of the real
bookworm index: every package's and every relation's.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
from functools import cmp_to_key
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkgrepo.errors import BadInput
from pkgrepo.resolve.debian import (
    DebianIndex,
    parse_alternative,
    parse_relations,
    parse_size,
    read_index_bytes,
)
from pkgrepo.resolve.version import compare
from tests.helpers.cli import run_cli
from tests.helpers.peers import MAIN

BAD_RELATIONS = [
    "| bar",
    "foo (= 1.0",
    "foo [amd64",
    "foo,, bar",
    "foo (=> 1.0)",
    "foo,",
    "foo (>> )",
    "foo (>= )",
    "foo ()",
    "(= 1.0)",
    "foo | | bar",
    "foo (== 1.0)",
    "foo (= 1.0) (= 2.0)",
    "foo bar",
    "foo (= 1 0)",
]


@pytest.mark.parametrize("text", BAD_RELATIONS)
def test_malformed_relations_are_bad_input(text: str):
    with pytest.raises(BadInput):
        parse_relations(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("foo", "((Dep(name='foo', op=None, version=None),),)"),
        (
            "foo (>> 1.0~rc1) | bar:any (<< 2:1.0-1), baz [amd64 !i386] <!nocheck>",
            "((Dep(name='foo', op='>>', version='1.0~rc1'), Dep(name='bar', op='<<', version='2:1.0-1')), "
            "(Dep(name='baz', op=None, version=None),))",
        ),
        ("foo (>1)", "((Dep(name='foo', op='>=', version='1'),),)"),
        ("foo(>=1.0)", "((Dep(name='foo', op='>=', version='1.0'),),)"),
    ],
)
def test_wellformed_relations(text: str, expected: str):
    assert repr(parse_relations(text)) == expected


@pytest.mark.parametrize("text", ["abc", "1.5", "9" * 30, "-1", "", " 1", "\uff11\uff12"])
def test_sizes_are_validated(text: str):
    with pytest.raises(BadInput):
        parse_size(text)


RELATION_TEXT = st.text(alphabet="abz09+-.~:_ ()<>=|,[]!", max_size=40) | st.text(max_size=40)


@settings(max_examples=2000, deadline=None)
@given(RELATION_TEXT)
def test_random_relations_parse_or_are_bad_input(text: str):
    try:
        clauses = parse_relations(text)
    except BadInput as e:
        assert "\n" not in str(e)
        return
    for clause in clauses:
        for dep in clause:
            assert dep.name and not set(dep.name) & set("()<>=|,[] ")
            assert dep.version is None or not set(dep.version) & set("()<>=|,[] ")
            assert (dep.op is None) == (dep.version is None)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789.~+-:ab", max_size=30), st.text(alphabet="0123456789.~+-:ab", max_size=30))
def test_random_versions_compare_antisymmetrically(a: str, b: str):
    assert compare(a, b) == -compare(b, a)
    assert compare(a, a) == 0


def test_huge_numbers_in_versions_compare():
    assert compare("1." + "9" * 5000, "1." + "9" * 4999) == 1
    assert parse_alternative("foo (>= 1.0)").version == "1.0"
    with pytest.raises(BadInput, match="longer than"):
        parse_alternative("foo (>= " + "9" * 5000 + ")")


STANZA = "Package: {name}\nVersion: 1.0\nInstalled-Size: {size}\nDepends: {depends}\n"


def write_index(path: Path, stanzas: list[str]) -> Path:
    path.write_text("\n".join(stanzas))
    return path


def test_a_malformed_stanza_is_skipped_and_counted(tmp_path: Path):
    index = write_index(
        tmp_path / "Packages",
        [
            STANZA.format(name="good", size="10", depends="libc"),
            STANZA.format(name="libc", size="20", depends=""),
            STANZA.format(name="bad", size="10", depends="foo (=> 1.0)"),
            STANZA.format(name="huge", size="9" * 30, depends="libc"),
            STANZA.format(name="negative", size="-5", depends="libc"),
        ],
    )
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    proc = run_cli("resolve", "--index", f"debian:{index}", "good", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    warning = proc.stderr.strip()
    assert warning == (
        f"pkgrepo: warning: 3 stanzas skipped, first: {index}: bad: Depends: "
        "'foo (=> 1.0)': expected NAME[:ARCH] [(OP VERSION)] [[ARCH...]] [<PROFILE...>], "
        "OP one of << <= = >= >>"
    )
    data = json.loads(proc.stdout)
    assert data["skipped"]["count"] == 3
    assert [p["name"] for p in data["packages"]] == ["good", "libc"]
    assert data["installed_size"] == 30 * 1024
    proc = run_cli("resolve", "--index", f"debian:{index}", "negative", env=env)
    assert proc.returncode == 2
    assert "negative: no such package" in proc.stderr


def test_a_failed_compile_leaves_nothing_in_the_cache(tmp_path: Path):
    index = write_index(tmp_path / "Packages", [STANZA.format(name="bad", size="x", depends="")])
    cache = tmp_path / "cache"
    proc = run_cli("resolve", "--index", f"debian:{index}", "bad", env={"PKGREPO_CACHE": str(cache)})
    assert proc.returncode == 2
    assert "no valid package stanzas found (1 malformed, first: " in proc.stderr
    assert "Installed-Size: 'x'" in proc.stderr
    assert list((cache / "index").iterdir()) == []
    with pytest.raises(BadInput):
        DebianIndex([tmp_path / "missing"], cache / "index")
    assert list((cache / "index").iterdir()) == []


@pytest.mark.parametrize(
    "root", ["foo (", "bash (>= ", "bash (>> )", "a b", "", "bash [amd64", "((((", "x (= 1) | y"]
)
def test_typed_roots_never_crash(tmp_path: Path, root: str):
    index = write_index(tmp_path / "Packages", [STANZA.format(name="bash", size="1", depends="")])
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    for command in (
        ["resolve", root, "--index", f"debian:{index}"],
        ["why", root, "--target", "bash", "--index", f"debian:{index}"],
        ["install", root, "--root", str(tmp_path / "root"), "--packages", str(tmp_path)],
    ):
        proc = run_cli(*command, env=env)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


APT_COMPARE = """
import sys, json, apt_pkg
apt_pkg.init_system()
pairs = json.load(sys.stdin)
json.dump([(apt_pkg.version_compare(a, b) > 0) - (apt_pkg.version_compare(a, b) < 0) for a, b in pairs], sys.stdout)
"""


@pytest.mark.needs_apt_lists
def test_version_order_matches_apt_on_every_bookworm_version():
    if subprocess.run(["/usr/bin/python3", "-c", "import apt_pkg"], capture_output=True).returncode != 0:
        pytest.skip("needs Debian's python3-apt (scripts/setup.sh installs it)")
    text = read_index_bytes(MAIN).decode("utf-8", "replace")
    versions = {line[9:].strip() for line in text.splitlines() if line.startswith("Version: ")}
    versions |= set(re.findall(r"\((?:<<|<=|=|>=|>>|<|>) *([^) ]+)\)", text))  # and those of every relation
    versions = sorted(versions)
    assert len(versions) > 20_000
    ordered = sorted(versions, key=cmp_to_key(compare))
    rng = random.Random(7)
    pairs = list(itertools.pairwise(ordered))
    pairs += [(rng.choice(versions), rng.choice(versions)) for _ in range(20_000)]
    apt = json.loads(
        subprocess.run(
            ["/usr/bin/python3", "-c", APT_COMPARE],
            input=json.dumps(pairs),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    ours = [compare(a, b) for a, b in pairs]
    wrong = [(a, b, o, x) for (a, b), o, x in zip(pairs, ours, apt, strict=True) if o != x]
    assert not wrong, wrong[:10]
