"""Advisories matched against published packages, through an index by what they are filed under.

An advisory's affected entry names a pkgrepo package or recipe (`affected.package`) or an
upstream project (`affected.purl`, matched against the package's `upstream` purl), so each
advisory is indexed under those keys once and a package is compared only with the advisories
filed under its name, its recipe or its upstream project: the work grows with the packages
and the advisories, not with their product (hundreds of Debian advisories against every
package of the repository made site generation slower than the publish itself).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from pkgrepo.attest.advisories import Advisory, Affected, package_component
from pkgrepo.attest.component import Component
from pkgrepo.attest.scan import Finding, finding
from pkgrepo.attest.versionkey import Key, version_key
from pkgrepo.attest.vex import Statement
from pkgrepo.package.meta import PackageInfo


class Status(NamedTuple):
    """A published package's status for one advisory (thousands a site: a tuple is made faster
    than a frozen dataclass, and reads and prints the same)."""

    package: str
    version: str
    status: str  # affected, not_affected, fixed, under_investigation, not affected
    note: str


class _Component(Component):
    """A component whose purls are made and parsed once, not at every advisory it is compared with."""

    project = functools.cached_property(Component.project.fget)  # type: ignore[attr-defined]
    upstream_version = functools.cached_property(Component.upstream_version.fget)  # type: ignore[attr-defined]
    purl = functools.cached_property(Component.purl.fget)  # type: ignore[attr-defined]


def component(info: PackageInfo) -> Component:
    """A package as advisories see it, its upstream purl parsed once."""
    return package_component(info, _Component)


class _Bounds(NamedTuple):
    """An affected entry with its versions parsed once: each range as (lowest or None,
    highest or None, whether the highest is affected), its first fixed version's key."""

    entry: Affected
    ranges: tuple[tuple[Key | None, Key | None, bool], ...]
    fixed: Key | None


class _Verdict(NamedTuple):
    hit: Affected | None  # the affected entry that hits the package
    status: str  # else why not: fixed (in a version at or below its own), or not affected
    note: str


_OUTSIDE = _Verdict(None, "not affected", "outside the affected versions")


def _bounds(a: Affected) -> _Bounds:
    ranges = tuple(
        (
            None if r.introduced == "0" else version_key(r.introduced),
            version_key(r.fixed) if r.fixed is not None else _opt(r.last_affected),
            r.fixed is None,
        )
        for r in a.ranges
    )
    return _Bounds(a, ranges, _opt(a.fixed))


def _opt(version: str | None) -> Key | None:
    return None if version is None else version_key(version)


def _within(b: _Bounds, version: str, key: Key) -> bool:
    """`Affected.contains(version)` (`key`: its version_key), from the parsed bounds."""
    return version in b.entry.versions or any(
        (lo is None or key >= lo) and (hi is None or (key <= hi if inclusive else key < hi))
        for lo, hi, inclusive in b.ranges
    )


class _Seen(NamedTuple):
    """A component as advisories compare it: upstream project and version parsed once per
    upstream purl (the subpackages of a recipe share it), each version's key."""

    name: str
    origin: str
    version: str
    project: str | None
    upstream_version: str | None
    keys: dict[str, Key]


class AdvisoryIndex:
    """Advisories by package or recipe name and by upstream project purl, in their given order.

    An advisory whose affected entries all name upstream projects (every Debian one) hits or
    spares a package by its upstream project and version alone, so its verdict is reached once
    for all the packages of one upstream release (a recipe's subpackages), not once for each."""

    def __init__(self, advisories: Iterable[Advisory], statements: list[Statement]):
        self.advisories = list(advisories)
        self.statements = statements
        self._by_key: dict[str, list[int]] = defaultdict(list)
        for i, adv in enumerate(self.advisories):
            for key in {a.purl if a.purl is not None else a.package for a in adv.affected}:
                self._by_key[key].append(i)
        self._upstream_only = [all(a.purl is not None for a in adv.affected) for adv in self.advisories]
        self._vex_by_id: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(statements):
            for name in s.names():
                self._vex_by_id[name].append(i)
        self._about: dict[int, list[Statement]] = {}
        self._filed_under: dict[tuple[str, str, str | None], list[int]] = {}
        self._bounds: dict[int, tuple[_Bounds, ...]] = {}  # parsed when first filed under a package
        self._purls: dict[str, tuple[str, str | None]] = {}  # upstream purl -> project, version
        self._verdicts: dict[tuple[str | None, str | None], dict[int, _Verdict]] = defaultdict(dict)

    def _seen(self, c: Component) -> _Seen:
        project = upstream_version = None
        if c.upstream:
            parsed = self._purls.get(c.upstream)
            if parsed is None:
                parsed = self._purls[c.upstream] = (c.project or "", c.upstream_version)
            project, upstream_version = parsed
        versions = (upstream_version, c.version)
        keys = {v: version_key(v) for v in versions if v is not None}
        return _Seen(c.name, c.origin, c.version, project, upstream_version, keys)

    def _filed(self, c: _Seen) -> list[int]:
        key = (c.name, c.origin, c.project)
        found = self._filed_under.get(key)
        if found is None:
            parts = [self._by_key[k] for k in set(key) if k in self._by_key]  # each in order
            found = parts[0] if len(parts) == 1 else sorted({i for p in parts for i in p})
            self._filed_under[key] = found
        return found

    def filed_under(self, c: Component) -> list[Advisory]:
        """The advisories with an affected entry about `c` (a superset of those that hit it)."""
        return [self.advisories[i] for i in self._filed(self._seen(c))]

    def scan(self, components: Iterable[Component], proven: dict[str, frozenset[str]]) -> list[Finding]:
        """`pkgrepo.attest.scan.scan` over `components` against every advisory (the same
        findings in the same order), each compared only with the advisories filed under it."""
        out: list[Finding] = []
        for c in sorted(components, key=lambda c: c.name):
            out += self.assess(c, proven.get(c.name, frozenset()))[0]
        return out

    def assess(self, c: Component, proven: frozenset[str]) -> tuple[list[Finding], dict[str, Status]]:
        """The findings of `c` (`scan`'s, `proven`: the ids its signed provenance's patches fix)
        and, by advisory id, its status for every advisory filed under it: its finding, or why
        it is not one (fixed in a version at or below it, or outside the affected versions)."""
        seen = self._seen(c)
        shared = self._verdicts[seen.project, seen.upstream_version]
        verdicts = []
        for i in self._filed(seen):
            verdict = shared.get(i) if self._upstream_only[i] else None
            if verdict is None:
                verdict = self._verdict(i, seen)
                if self._upstream_only[i]:
                    shared[i] = verdict
            verdicts.append((i, verdict))
        findings = [
            finding(self.advisories[i], c, v.hit, self._vex(i, c), proven)
            for i, v in verdicts
            if v.hit is not None
        ]
        found = {f.advisory: f for f in findings}  # by id: an advisory filed twice shows one status
        statuses = {}
        for i, v in verdicts:
            adv_id = self.advisories[i].id
            f = found.get(adv_id)
            status, note = (f.status, f.note) if f is not None else (v.status, v.note)
            statuses[adv_id] = Status(c.name, c.version, status, note)
        return findings, statuses

    def _verdict(self, i: int, c: _Seen) -> _Verdict:
        """Advisory `i` on `c`: the affected entry that hits it (`Advisory.matches`), else the
        first fixed version at or below its version (`Affected.covers`, `hits` and `fixed`)."""
        bounds = self._bounds.get(i)
        if bounds is None:
            bounds = self._bounds[i] = tuple(_bounds(a) for a in self.advisories[i].affected)
        fixed = None
        for b in bounds:
            a = b.entry
            if a.purl is not None:
                covers, version = a.purl == c.project, c.upstream_version
            else:
                covers, version = a.package in (c.name, c.origin), c.version
            if version is None or not covers:
                continue
            key = c.keys[version]
            if _within(b, version, key):
                return _Verdict(a, "", "")
            if fixed is None and b.fixed is not None and key >= b.fixed:
                fixed = a.fixed
        return _OUTSIDE if fixed is None else _Verdict(None, "fixed", f"fixed in {fixed}")

    def _vex(self, i: int, c: Component) -> Statement | None:
        """The last statement about advisory `i` (naming it or an alias) that applies to `c`, as
        `scan` picks it; each finding is checked against its own few, not every statement."""
        about = self._about.get(i)
        if about is None:
            found = {j for n in self.advisories[i].names() for j in self._vex_by_id.get(n, ())}
            about = self._about[i] = [self.statements[j] for j in sorted(found)]
        return next((s for s in reversed(about) if s.applies(c.purl)), None)
