"""Advisories in OSV's JSON shape, with version ranges in this project's version order.

One advisory per `*.json` file of a directory (`repo-data/advisories/` by default). An
affected entry names a package by `package.name` (a recipe or a package name) with
`package.ecosystem` "pkgrepo"; `ranges` of type `ECOSYSTEM` with `introduced`/`fixed`/
`last_affected` events and explicit `versions` are compared in `pkgrepo.resolve.version`'s order.
Severity is `database_specific.severity` (LOW, MEDIUM or MODERATE, HIGH, CRITICAL). A
package is matched as `package_component` makes it from its metadata (here, not beside the
SBOM readers: the web catalogue matches at every publish without loading them).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.attest.component import Component, upstream_project
from pkgrepo.attest.versionkey import version_key
from pkgrepo.errors import BadInput
from pkgrepo.package.meta import PackageInfo
from pkgrepo.safeio import load_json

ECOSYSTEM = "pkgrepo"  # affected[].package.name is a pkgrepo package or recipe, versions ours
UPSTREAM = "upstream"  # affected[].package.purl is an upstream project, versions upstream's
FEED = "feed.json"  # the feed's metadata beside its records: name, revision, date, projects
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
        key = version_key(version)  # compare(), each version parsed once
        if self.introduced != "0" and key < version_key(self.introduced):
            return False
        if self.fixed is not None:
            return key < version_key(self.fixed)
        if self.last_affected is not None:
            return key <= version_key(self.last_affected)
        return True


@dataclass(frozen=True)
class Affected:
    package: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    purl: str | None = None  # an upstream project: ranges are in its upstream versions

    def covers(self, c: Component) -> bool:
        """Whether this entry is about `c`: its upstream project, or (ecosystem pkgrepo) its name."""
        if self.purl is not None:
            return c.project == self.purl
        return self.package in (c.name, c.origin)

    def hits(self, c: Component) -> bool:
        if not self.covers(c):
            return False
        version = c.upstream_version if self.purl is not None else c.version
        return version is not None and self.contains(version)

    def contains(self, version: str) -> bool:
        return version in self.versions or any(r.contains(version) for r in self.ranges)

    @functools.cached_property
    def fixed(self) -> str | None:  # asked of each affected entry at every package matched
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

    def matches(self, c: Component) -> Affected | None:
        return next((a for a in self.affected if a.hits(c)), None)

    @classmethod
    def from_dict(cls, path: Path, data: object) -> Advisory:
        try:
            assert isinstance(data, dict), "top level is not an object"
            affected = []
            for i, a in enumerate(data["affected"]):
                pkg = a["package"]
                ecosystem = pkg.get("ecosystem", ECOSYSTEM)
                if ecosystem not in (ECOSYSTEM, UPSTREAM):
                    continue
                purl = None
                if ecosystem == UPSTREAM:
                    if not isinstance(pkg.get("purl"), str):
                        raise BadInput(f"{path}: affected[{i}].package: ecosystem upstream needs a purl")
                    purl = upstream_project(pkg["purl"])
                ranges = []
                for r in a.get("ranges", []):
                    if r["type"] != "ECOSYSTEM":
                        raise BadInput(f"{path}: affected[{i}].ranges: type {r['type']!r} is not ECOSYSTEM")
                    ranges += _ranges(path, i, r["events"])
                affected.append(
                    Affected(str(pkg["name"]), tuple(ranges), tuple(map(str, a.get("versions", []))), purl)
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
        except (KeyError, TypeError, AttributeError, AssertionError, ValueError) as e:
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


@dataclass(frozen=True)
class Feed:
    """An advisory directory: its records and what its metadata says of where they came from."""

    directory: Path
    advisories: tuple[Advisory, ...]
    name: str  # the source ("debian-changelog"), or "local" for a directory without metadata
    revision: str
    date: str
    projects: frozenset[str]  # upstream projects the source was read for (covered, even if clean)

    def covers(self, c: Component) -> bool:
        """Whether the feed has data for `c`: its upstream project was read, or a record names it."""
        if c.project is not None and c.project in self.projects:
            return True
        return any(a.covers(c) for adv in self.advisories for a in adv.affected)


def load_feed(directory: Path) -> Feed:
    """Every `*.json` record of `directory` and its `feed.json` metadata (if any)."""
    if not directory.is_dir():
        raise BadInput(f"{directory}: advisories directory does not exist; pass --advisories DIR")
    out = []
    for path in sorted(directory.glob("*.json")):
        if path.name != FEED:
            out.append(Advisory.from_dict(path, load_json(path, "advisory")))
    meta_path = directory / FEED
    name, revision, date, projects = "local", "unversioned", "unknown", frozenset[str]()
    if meta_path.exists():
        meta = load_json(meta_path, "feed metadata")
        try:
            assert isinstance(meta, dict)
            name, revision, date = str(meta["name"]), str(meta["revision"]), str(meta["date"])
            projects = frozenset(upstream_project(str(p)) for p in meta.get("projects", []))
        except (KeyError, AssertionError, ValueError, TypeError) as e:
            raise BadInput(f"{meta_path}: feed metadata lacks or mangles {e}; re-import the feed") from None
    return Feed(directory, tuple(out), name, revision, date, projects)


def load_advisories(directory: Path) -> list[Advisory]:
    return list(load_feed(directory).advisories)


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


def package_component(info: PackageInfo, kind: type[Component] = Component) -> Component:
    """A package as advisories see it: name, recipe, version, upstream project and declared fixes
    (no content digest: what matters here is what the package is, not what it holds). `kind`: a
    subclass of Component to make (the web catalogue's caches parsed purls)."""
    return kind(
        info.name,
        info.full_version,
        info.license,
        info.origin,
        "",
        upstream=info.upstream,
        cpe=info.cpe,
        fixes=tuple(info.fixes),
    )
