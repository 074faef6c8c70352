"""Dependency clauses of native packages: `name`, `name>=1.2`, `so:libz.so.1`, `pc:zlib=1.3`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pkgrepo.errors import BadInput
from pkgrepo.resolve.version import satisfies

_DEP = re.compile(r"^(?P<name>[^\s<>=]+)\s*(?:(?P<op>>=|<=|=|<|>)\s*(?P<ver>[^\s<>=]\S*))?$")


@dataclass(frozen=True)
class Dep:
    name: str
    op: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.version}" if self.op else self.name


def parse_dep(text: str) -> Dep:
    m = _DEP.match(text.strip())
    if not m:
        raise BadInput(f"{text!r} is not a dependency (NAME, NAME>=VERSION, so:LIB, cmd:NAME)")
    return Dep(m.group("name"), m.group("op"), m.group("ver"))


def parse_provide(text: str) -> tuple[str, str | None]:
    """One `provides` entry: `so:libz.so.1` -> (name, None), `pc:zlib=1.3` -> (name, "1.3")."""
    name, _, version = text.partition("=")
    return name, version or None


def meets(dep: Dep, name: str, version: str, provides: Iterable[tuple[str, str | None]]) -> bool:
    """Does a package (`name` at `version`, with `provides`) meet `dep`?

    By its own name and version, or by a provide; a versioned dependency is met
    only by a versioned provide (Debian policy 7.5, and pkgrepo's own packages
    follow the same rule)."""
    if name == dep.name and (dep.op is None or satisfies(version, dep.op, dep.version or "")):
        return True
    for pname, pversion in provides:
        if pname != dep.name:
            continue
        if dep.op is None or (pversion is not None and satisfies(pversion, dep.op, dep.version or "")):
            return True
    return False
