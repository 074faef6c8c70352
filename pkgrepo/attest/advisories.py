"""Advisories in OSV's JSON shape, with version ranges in this project's version order.

One advisory per `*.json` file of a directory (`repo-data/advisories/` by default). An
affected entry names a package by `package.name` (a recipe or a package name) with
`package.ecosystem` "pkgrepo"; `ranges` of type `ECOSYSTEM` with `introduced`/`fixed`/
`last_affected` events and explicit `versions` are compared with `pkgrepo.resolve.version`.
Severity is `database_specific.severity` (LOW, MEDIUM or MODERATE, HIGH, CRITICAL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.resolve.version import compare
from pkgrepo.safeio import load_json

ECOSYSTEM = "pkgrepo"
SEVERITIES = ("unknown", "low", "medium", "high", "critical")
_ALIASES = {"moderate": "medium"}


def severity_rank(name: str) -> int:
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in SEVERITIES:
        raise BadInput(f"severity {name!r}: expected one of {', '.join(SEVERITIES)}")
    return SEVERITIES.index(name)


@dataclass(frozen=True)
class Range:
    introduced: str
    fixed: str | None = None
    last_affected: str | None = None

    def contains(self, version: str) -> bool:
        if self.introduced != "0" and compare(version, self.introduced) < 0:
            return False
        if self.fixed is not None:
            return compare(version, self.fixed) < 0
        if self.last_affected is not None:
            return compare(version, self.last_affected) <= 0
        return True


@dataclass(frozen=True)
class Affected:
    package: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]

    def contains(self, version: str) -> bool:
        return version in self.versions or any(r.contains(version) for r in self.ranges)

    @property
    def fixed(self) -> str | None:
        return next((r.fixed for r in self.ranges if r.fixed), None)


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    severity: str
    aliases: tuple[str, ...]
    affected: tuple[Affected, ...]
    path: Path

    def names(self) -> set[str]:
        return {self.id, *self.aliases}

    def matches(self, name: str, origin: str, version: str) -> Affected | None:
        return next((a for a in self.affected if a.package in (name, origin) and a.contains(version)), None)

    @classmethod
    def from_dict(cls, path: Path, data: object) -> Advisory:
        try:
            assert isinstance(data, dict), "top level is not an object"
            affected = []
            for i, a in enumerate(data["affected"]):
                pkg = a["package"]
                if pkg.get("ecosystem", ECOSYSTEM) != ECOSYSTEM:
                    continue
                ranges = []
                for r in a.get("ranges", []):
                    if r["type"] != "ECOSYSTEM":
                        raise BadInput(f"{path}: affected[{i}].ranges: type {r['type']!r} is not ECOSYSTEM")
                    ranges += _ranges(path, i, r["events"])
                affected.append(
                    Affected(str(pkg["name"]), tuple(ranges), tuple(map(str, a.get("versions", []))))
                )
            severity = str((data.get("database_specific") or {}).get("severity", "unknown")).lower()
            severity_rank(severity)
            return cls(
                str(data["id"]),
                str(data.get("summary", "")),
                _ALIASES.get(severity, severity),
                tuple(map(str, data.get("aliases", []))),
                tuple(affected),
                path,
            )
        except BadInput as e:
            raise BadInput(f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)) from None
        except (KeyError, TypeError, AttributeError, AssertionError) as e:
            raise BadInput(
                f"{path}: not an OSV advisory (missing or wrong {e}); see docs/evidence.md for the fields"
            ) from None


def _ranges(path: Path, i: int, events: list[dict]) -> list[Range]:
    out: list[Range] = []
    start: str | None = None
    for e in events:
        if "introduced" in e:
            start = str(e["introduced"])
        elif start is None:
            raise BadInput(f"{path}: affected[{i}].ranges: an event comes before any `introduced`")
        elif "fixed" in e:
            out.append(Range(start, fixed=str(e["fixed"])))
            start = None
        elif "last_affected" in e:
            out.append(Range(start, last_affected=str(e["last_affected"])))
            start = None
        else:
            raise BadInput(f"{path}: affected[{i}].ranges: unknown event {sorted(e)}")
    if start is not None:
        out.append(Range(start))
    return out


def load_advisories(directory: Path) -> list[Advisory]:
    if not directory.is_dir():
        raise BadInput(f"{directory}: advisories directory does not exist; pass --advisories DIR")
    out = []
    for path in sorted(directory.glob("*.json")):
        data = load_json(path, "advisory")  # no-follow, regular, bounded size and nesting
        out.append(Advisory.from_dict(path, data))
    return out


def find(advisories: list[Advisory], ident: str) -> Advisory:
    for a in advisories:
        if ident in a.names():
            return a
    raise BadInput(
        f"{ident}: no such advisory among {len(advisories)} loaded; check the id or --advisories DIR"
    )


def data_dir(name: str) -> Path:
    """`repo-data/NAME` of the embedded default ($PKGREPO_DATA overrides repo-data)."""
    env = os.environ.get("PKGREPO_DATA")
    return (Path(env) if env else Path(__file__).resolve().parents[2] / "repo-data") / name
