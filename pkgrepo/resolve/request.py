"""A resolve request as commands make it: an index spec, typed roots and a profile.

What `resolve`, `why` and `resolve --diff` compute, as data the command line
only prints: the closure (`resolve_roots`), its JSON form with the install
order (`result_dict`) and what one profile adds to another (`ProfileDiff`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgrepo.resolve.indexes import Warn, parse_root
from pkgrepo.resolve.minimize import Result, minimize
from pkgrepo.resolve.model import Index, Package
from pkgrepo.resolve.profiles import Profile, roots_for
from pkgrepo.resolve.sources import open_source


def resolve_roots(
    index_spec: str,
    roots: list[str],
    profile: Profile,
    extras: list[str],
    time_limit: float,
    trust: Path | None = None,
    warn: Warn = lambda _m: None,
) -> tuple[Index, Result]:
    source = open_source(index_spec, trust=trust, every_version=True, warn=warn)
    index = source.index
    wanted = roots_for(profile, roots, source.kind, extras, index)
    return index, minimize(index, [parse_root(r) for r in wanted], time_limit)


def package_dict(p: Package) -> dict[str, Any]:
    return {"name": p.name, "version": p.version, "installed_size": p.installed_size}


def result_dict(index: Index, result: Result, profile: Profile) -> dict[str, Any]:
    from pkgrepo.resolve.explain import install_order

    groups, cycles = install_order(result)
    data = {
        "index": index.label,
        "profile": profile,
        "roots": [str(r) for r in result.roots],
        "packages": [package_dict(p) for p in result.packages],
        "installed_size": result.installed_size,
        "optimal": result.optimal,
        "solver": result.solver,
        "seconds": round(result.seconds, 4),
        "install_order": groups,
        "cycles": cycles,
    }
    skipped = getattr(index, "skipped", 0)
    if skipped:
        data["skipped"] = {"count": skipped, "first": index.first_skipped}  # type: ignore[attr-defined]
    return data


@dataclass(frozen=True)
class ProfileDiff:
    """What closure `b` adds to closure `a` (by package name), and what it drops."""

    added: list[Package]
    removed: list[str]
    added_size: int

    @classmethod
    def between(cls, a: Result, b: Result) -> ProfileDiff:
        a_names, b_names = {p.name for p in a.packages}, {p.name for p in b.packages}
        return cls(
            [p for p in b.packages if p.name not in a_names],
            [p.name for p in a.packages if p.name not in b_names],
            b.installed_size - a.installed_size,
        )
