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
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pkgrepo.attest.advisories import Advisory
from pkgrepo.attest.component import Component, Subject
from pkgrepo.attest.inventory import package_component
from pkgrepo.attest.scan import Finding, scan
from pkgrepo.attest.versionkey import version_key
from pkgrepo.attest.vex import Statement
from pkgrepo.package.meta import PackageInfo


@dataclass(frozen=True)
class Status:
    package: str
    version: str
    status: str  # affected, not_affected, fixed, under_investigation, not affected
    note: str

    def to_dict(self) -> dict[str, str]:
        return {"package": self.package, "version": self.version, "status": self.status, "note": self.note}


class _Component(Component):
    """A component whose purls are made and parsed once, not at every advisory it is compared with."""

    project = functools.cached_property(Component.project.fget)  # type: ignore[attr-defined]
    upstream_version = functools.cached_property(Component.upstream_version.fget)  # type: ignore[attr-defined]
    purl = functools.cached_property(Component.purl.fget)  # type: ignore[attr-defined]


def component(info: PackageInfo) -> Component:
    """A package as advisories see it, its upstream purl parsed once."""
    return package_component(info, _Component)


class AdvisoryIndex:
    """Advisories by package or recipe name and by upstream project purl, in their given order."""

    def __init__(self, advisories: Iterable[Advisory], statements: list[Statement]):
        self.advisories = list(advisories)
        self.statements = statements
        self._by_key: dict[str, list[int]] = defaultdict(list)
        for i, adv in enumerate(self.advisories):
            for key in {a.purl if a.purl is not None else a.package for a in adv.affected}:
                self._by_key[key].append(i)
        # what a finding or status depends on besides the package: the inputs' values, in order
        self.digest = hashlib.sha256(repr((self.advisories, statements)).encode()).hexdigest()
        self._vex_by_id: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(statements):
            for name in s.names():
                self._vex_by_id[name].append(i)
        # the statements naming each advisory, in their given order (the last one wins in `scan`),
        # so each finding is checked against its own few, not every statement (most have none)
        self._about = [
            {i for n in adv.names() for i in self._vex_by_id.get(n, ())} for adv in self.advisories
        ]
        self._filed_under: dict[tuple[str, str, str | None], list[int]] = {}

    def _filed(self, c: Component) -> list[int]:
        key = (c.name, c.origin, c.project)  # scan and statuses ask it of each package
        found = self._filed_under.get(key)
        if found is None:
            found = sorted({i for k in set(key) - {None} for i in self._by_key.get(k, ())})
            self._filed_under[key] = found
        return found

    def filed_under(self, c: Component) -> list[Advisory]:
        """The advisories with an affected entry about `c` (a superset of those that hit it)."""
        return [self.advisories[i] for i in self._filed(c)]

    def scan(self, components: Iterable[Component], proven: dict[str, frozenset[str]]) -> list[Finding]:
        """`pkgrepo.attest.scan.scan` over `components`, each against its own advisories only
        (the same findings in the same order as a scan against every advisory)."""
        out: list[Finding] = []
        for c in sorted(components, key=lambda c: c.name):
            # the advisories that hit it (most filed under it do not), with the statements naming them
            hit = [i for i in self._filed(c) if self.advisories[i].matches(c) is not None]
            if hit:
                subject = Subject("package", c.name, c.version, 0, (c,))
                about = sorted(set().union(*(self._about[i] for i in hit)))
                out += scan(
                    subject, [self.advisories[i] for i in hit], [self.statements[i] for i in about], proven
                )
        return out

    def statuses(self, c: Component, findings: list[Finding]) -> dict[str, Status]:
        """Advisory id -> the status of `c` for every advisory filed under it: its finding, or
        why it is not one (fixed in a version at or below it, or outside the ranges)."""
        found = {f.advisory: f for f in findings if f.package == c.name}
        out = {}
        for adv in self.filed_under(c):
            f = found.get(adv.id)
            if f is not None:
                out[adv.id] = Status(c.name, c.version, f.status, f.note)
                continue
            note, status = "outside the affected versions", "not affected"
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
