"""The catalogue's advisory index gives what a plain scan against every advisory gives: the
same findings in the same order, and each package's status for every advisory filed under it,
though it parses each advisory's bounds once and reaches an upstream advisory's verdict once
per upstream release (shared by a recipe's subpackages)."""

from __future__ import annotations

import itertools
from pathlib import Path

from pkgrepo.attest.advisories import Advisory
from pkgrepo.attest.component import Subject
from pkgrepo.attest.scan import scan
from pkgrepo.attest.versionkey import version_key
from pkgrepo.attest.vex import Statement
from pkgrepo.package.meta import PackageInfo
from pkgrepo.web.matching import AdvisoryIndex, Status, component

UP = "pkg:generic/example/thing"


def _advisory(ident: str, *affected: dict, aliases: tuple[str, ...] = ()) -> Advisory:
    return Advisory.from_dict(
        Path(f"{ident}.json"), {"id": ident, "summary": f"{ident} summary", "aliases": list(aliases),
                                "affected": list(affected)},
    )  # fmt: skip


def _upstream(*events: dict, versions: tuple[str, ...] = ()) -> dict:
    return {"package": {"ecosystem": "upstream", "name": "thing", "purl": UP},
            "ranges": [{"type": "ECOSYSTEM", "events": list(events)}], "versions": list(versions)}  # fmt: skip


def _named(name: str, *events: dict) -> dict:
    return {"package": {"ecosystem": "pkgrepo", "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": list(events)}]}  # fmt: skip


ADVISORIES = [
    _advisory("A-1", _upstream({"introduced": "0"}, {"fixed": "2.0"})),
    _advisory("A-2", _upstream({"introduced": "1.5"}, {"last_affected": "1.9"})),
    _advisory("A-3", _upstream({"introduced": "0"}, {"fixed": "1.0"}, {"introduced": "3.0"})),
    _advisory("A-4", _upstream({"introduced": "0"}, {"fixed": "0.5"}, versions=("1.2",))),
    # an upstream entry that spares every release, and a name entry that hits only thing-dev:
    # its verdict is the package's own, not its upstream release's
    _advisory(
        "A-5", _upstream({"introduced": "9"}, {"fixed": "9.1"}), _named("thing-dev", {"introduced": "0"})
    ),
    _advisory("A-6", _named("thing", {"introduced": "0"}, {"fixed": "1.2-r2"}), aliases=("CVE-6",)),
    _advisory("A-6", _upstream({"introduced": "0"}, {"fixed": "0.1"})),  # the same id again
    _advisory("A-7", _named("other", {"introduced": "0"})),
    _advisory("A-8", _upstream({"introduced": "0"}, {"fixed": "1.2"}), aliases=("CVE-8",)),
]
STATEMENTS = [
    Statement("CVE-6", (), ("pkg:generic/pkgrepo/thing?arch=x86_64",), "not_affected",
              "vulnerable_code_not_present", None, None, Path("vex-1.json")),
    Statement("A-1", (), ("pkg:generic/pkgrepo/thing-dev?arch=x86_64",), "under_investigation",
              None, None, "looking", Path("vex-2.json")),
    Statement("A-1", (), ("pkg:generic/pkgrepo/thing-dev@1.2-r1?arch=x86_64",), "affected",
              None, "it is", None, Path("vex-3.json")),
]  # fmt: skip


def _statuses(advisories: list[Advisory], c, findings) -> dict[str, Status]:
    """The status of `c` for each advisory about it, the plain way."""
    found = {f.advisory: f for f in findings}
    out = {}
    for adv in advisories:
        if not any(a.covers(c) for a in adv.affected):
            continue
        f = found.get(adv.id)
        if f is not None:
            out[adv.id] = Status(c.name, c.version, f.status, f.note)
            continue
        status, note = "not affected", "outside the affected versions"
        for a in adv.affected:
            version = c.upstream_version if a.purl is not None else c.version
            if (
                a.covers(c)
                and a.fixed
                and version is not None
                and version_key(version) >= version_key(a.fixed)
            ):
                status, note = "fixed", f"fixed in {a.fixed}"
                break
        out[adv.id] = Status(c.name, c.version, status, note)
    return out


def test_the_index_gives_what_a_scan_against_every_advisory_gives():
    advisories = sorted(ADVISORIES, key=lambda a: a.id)
    index = AdvisoryIndex(advisories, STATEMENTS)
    checked = 0
    # subpackages of one upstream release in turn (they share its verdicts), at several releases
    for upstream, name, release in itertools.product(("0.4", "1.2", "1.7", "2.0", "3.1", None), ("thing", "thing-dev", "other"), (1, 2)):  # fmt: skip
        info = PackageInfo(
            name=name, version=upstream or "1.2", origin="thing", release=release,
            upstream=f"{UP}@{upstream}" if upstream else None, fixes=["CVE-6", "CVE-8"],
        )  # fmt: skip
        c = component(info)
        for proven in (frozenset(), frozenset({"CVE-8"})):
            expected = scan(
                Subject("package", name, c.version, 0, (c,)), advisories, STATEMENTS, {name: proven}
            )
            findings, statuses = index.assess(c, proven)
            assert findings == expected, (upstream, name, release)
            assert statuses == _statuses(advisories, c, expected), (upstream, name, release)
            assert index.scan([c], {name: proven}) == expected
            checked += len(statuses)
    assert checked > 100
