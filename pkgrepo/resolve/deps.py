"""Dependency clauses of native packages: `name`, `name>=1.2`, `so:libz.so.1`, `pc:zlib=1.3`."""

from __future__ import annotations

import re
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


def provides_match(provide: str, dep: Dep) -> bool:
    """Does one `provides` entry (`so:x`, `pc:zlib=1.3`) satisfy `dep`?"""
    name, _, version = provide.partition("=")
    if name != dep.name:
        return False
    if dep.op is None:
        return True
    return bool(version) and satisfies(version, dep.op, dep.version or "")


def satisfied_by(dep: Dep, name: str, full_version: str, provides: list[str]) -> bool:
    if name == dep.name and (dep.op is None or satisfies(full_version, dep.op, dep.version or "")):
        return True
    return any(provides_match(p, dep) for p in provides)
