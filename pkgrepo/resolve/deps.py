"""Dependency clauses of native packages: `name`, `name>=1.2`, `so:libz.so.1`, `pc:zlib=1.3`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pkgrepo.errors import BadInput
from pkgrepo.resolve.version import satisfies

# The kinds of virtual name a package's scan provides and needs (docs/recipes.md).
LIBRARY = "so:"  # a shared library, by soname: so:libz.so.1
COMMAND = "cmd:"  # a command, by file name: cmd:sh
PKGCONFIG = "pc:"  # a pkg-config module, maybe versioned: pc:zlib=1.3
VIRTUAL = (LIBRARY, COMMAND, PKGCONFIG)

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


def provide_name(text: str) -> str:
    """The name a `provides` entry provides, without its version."""
    return parse_provide(text)[0]


def is_virtual(text: str) -> bool:
    """A library, command or pkg-config clause, met by a provide rather than a package name."""
    return text.startswith(VIRTUAL)


def soname(text: str) -> str | None:
    """The library a `so:` clause names, or None for any other clause."""
    return text[len(LIBRARY) :] if text.startswith(LIBRARY) else None


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
