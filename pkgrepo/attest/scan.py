"""Match what an image (or an SBOM) contains against advisories, then apply VEX.

A finding is an advisory that covers an installed package's version. VEX decides its
state: `not_affected` (suppressed, with the justification shown), `fixed` (suppressed),
`under_investigation` and `affected` (reported, with the statement's notes), none
(reported as affected).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pkgrepo.attest.advisories import Advisory, Affected, severity_rank
from pkgrepo.attest.component import Component, Subject
from pkgrepo.attest.provenance import Provenance
from pkgrepo.attest.vex import Statement
from pkgrepo.errors import BadInput

SUPPRESSED = ("not_affected", "fixed")


@dataclass(frozen=True)
class Finding:
    advisory: str
    severity: str
    package: str
    version: str
    fixed: str | None
    status: str  # affected, not_affected, fixed, under_investigation
    note: str  # the VEX justification or statement, or the advisory summary
    vex: Path | None

    @property
    def suppressed(self) -> bool:
        return self.status in SUPPRESSED

    def to_dict(self) -> dict:
        return {
            "advisory": self.advisory,
            "severity": self.severity,
            "package": self.package,
            "version": self.version,
            "fixed": self.fixed,
            "status": self.status,
            "note": self.note,
            "vex": str(self.vex) if self.vex else None,
        }


def _vex_for(statements: list[Statement], adv: Advisory, c: Component) -> Statement | None:
    names = adv.names()
    found = [s for s in statements if not names.isdisjoint(s.names()) and s.applies(c.purl)]
    return found[-1] if found else None  # the last document (by file name) wins


def scan(
    subject: Subject,
    advisories: list[Advisory],
    statements: list[Statement],
    proven: dict[str, frozenset[str]] | None = None,
) -> list[Finding]:
    """Findings for every component an advisory covers. A fix the component declares counts
    (status `fixed`) only where `proven[name]` — the ids its signed provenance's patches fix —
    holds it; without provenance a declared fix is reported, not trusted."""
    out = []
    for c in sorted(subject.components, key=lambda c: c.name):
        for adv in advisories:
            hit = adv.matches(c)
            if hit is not None:
                s = _vex_for(statements, adv, c)
                out.append(finding(adv, c, hit, s, (proven or {}).get(c.name, frozenset())))
    return out


def finding(
    adv: Advisory, c: Component, hit: Affected, s: Statement | None, proven: frozenset[str]
) -> Finding:
    """The finding of `adv` on `c`, whose affected entry `hit` covers it: its status and note
    from the VEX statement `s` about it (the one that applies), else from the fixes `c`
    declares and `proven` (the ids its signed provenance's patches fix) holds."""
    declared = adv.names() & set(c.fixes)
    if s is None and declared:
        ok = declared & proven
        status, note = (
            ("fixed", f"patch in signed provenance fixes {sorted(ok)[0]}")
            if ok
            else (
                "affected",
                f"fix declared ({sorted(declared)[0]}) but no signed provenance "
                "holds its patch; pass --provenance DIR",
            )
        )
    elif s is None:
        status, note = "affected", adv.summary
    else:
        status = s.status
        note = {"not_affected": s.justification or "", "fixed": s.impact or "fixed"}.get(
            s.status, s.action or s.impact or adv.summary
        )
    return Finding(adv.id, adv.severity, c.name, c.version, hit.fixed, status, note, s.path if s else None)


def failing(findings: list[Finding], fail_on: str) -> list[Finding]:
    """The unsuppressed findings at or above `fail_on`; one of unknown severity fails every bar
    (nothing says it is below)."""
    bar = severity_rank(fail_on)
    return [
        f
        for f in findings
        if not f.suppressed and (f.severity == "unknown" or severity_rank(f.severity) >= bar)
    ]


def check_fail_on(value: str | None) -> None:
    if value is not None:
        try:
            severity_rank(value)
        except BadInput as e:
            raise BadInput(f"--fail-on: {e}") from None


def proven_fixes(prov: Provenance) -> frozenset[str]:
    """The vulnerability ids a package's (verified) provenance says its patches fix."""
    return frozenset(
        i
        for d in prov.dependencies
        if d.name.startswith("patch:")
        for i in d.annotations.get("fixes", "").split()
    )


@dataclass(frozen=True)
class Holder:
    """A package file or an image (SBOM) that holds an affected version."""

    kind: str  # package or image
    where: str
    package: str
    version: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "package": self.package, "version": self.version}


def affected(
    adv: Advisory, packages: list[tuple[Path, Component]], images: list[tuple[Path, Subject]]
) -> list[Holder]:
    out = [Holder("package", str(p), c.name, c.version) for p, c in packages if adv.matches(c)]
    for path, subject in images:
        out += [Holder("image", str(path), c.name, c.version) for c in subject.components if adv.matches(c)]
    return out
