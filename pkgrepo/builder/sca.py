"""Derive dependencies and provides from a staged package (melange's `sca`).

One small generator per dependency kind, each run over every file of the
package in turn; adding a kind is adding a function to GENERATORS.

- shared libraries (`pkgrepo.elf`): DT_NEEDED -> depends `so:NAME`, DT_SONAME of a
  library in a lib directory (`pkgrepo.elf.LIB_DIRS`) -> provides `so:NAME`, PT_INTERP -> depends on the
  loader `so:BASENAME`; a loader (`ld-*.so*` in a lib directory) provides
  `so:BASENAME`.
- commands: executables in bin directories -> provides `cmd:NAME`.
- shebangs: scripts -> depends `cmd:INTERPRETER` (`/usr/bin/env X` -> `cmd:X`).
- pkg-config: `.pc` files -> provides `pc:NAME=VERSION`, `Requires` -> depends `pc:NAME`.

Files are read only through `staged.open_regular`: links are never followed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.builder.staged import open_regular, read_head
from pkgrepo.elf import dynamic, in_lib_dir
from pkgrepo.resolve.deps import COMMAND, LIBRARY, PKGCONFIG, provide_name

BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin")
PC_DIRS = ("usr/lib/pkgconfig", "usr/share/pkgconfig")


@dataclass
class Findings:
    depends: set[str] = field(default_factory=set)
    provides: set[str] = field(default_factory=set)
    # so: name -> files that need it, for error messages
    needed_by: dict[str, list[str]] = field(default_factory=dict)
    # script -> the interpreter path of its `#!` line (`/usr/bin/env X` -> X)
    interpreters: dict[str, str] = field(default_factory=dict)


Generator = Callable[[Path, str, Findings], None]


def _in(rel: str, dirs: tuple[str, ...]) -> bool:
    return os.path.dirname(rel) in dirs


def shared_libraries(root: Path, rel: str, out: Findings) -> None:
    f = open_regular(root, rel)
    if f is None:
        return
    with f:
        elf = dynamic(f)
    if elf is None:
        return
    for lib in [*([os.path.basename(elf.interp)] if elf.interp else []), *elf.needed]:
        dep = f"{LIBRARY}{lib}"
        out.depends.add(dep)
        out.needed_by.setdefault(dep, []).append(rel)
    if elf.soname and in_lib_dir(rel):
        out.provides.add(f"{LIBRARY}{elf.soname}")
    name = os.path.basename(rel)
    if in_lib_dir(rel) and re.match(r"^ld-.*\.so", name):
        out.provides.add(f"{LIBRARY}{name}")


def commands(root: Path, rel: str, out: Findings) -> None:
    if not _in(rel, BIN_DIRS):
        return
    mode = os.lstat(root / rel).st_mode
    # A link in a bin directory is a command too (its target is not looked at).
    if stat.S_ISLNK(mode) or (stat.S_ISREG(mode) and mode & 0o111):
        out.provides.add(f"{COMMAND}{os.path.basename(rel)}")


def shebangs(root: Path, rel: str, out: Findings) -> None:
    f = open_regular(root, rel)
    if f is None:
        return
    with f:
        if not os.fstat(f.fileno()).st_mode & 0o111:
            return
        head = f.read(256)
    if not head.startswith(b"#!"):
        return
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return
    interp = os.path.basename(words[0])
    out.interpreters[rel] = words[0]
    if interp == "env" and len(words) > 1:
        interp = next((w for w in words[1:] if not w.startswith("-")), "env")
        out.interpreters[rel] = interp
    dep = f"{COMMAND}{interp}"
    out.depends.add(dep)
    out.needed_by.setdefault(dep, []).append(rel)


def pkg_config(root: Path, rel: str, out: Findings) -> None:
    if not (_in(rel, PC_DIRS) and rel.endswith(".pc")):
        return
    name = os.path.basename(rel)[:-3]
    head = read_head(root, rel, 1 << 20)
    if head is None:
        out.provides.add(f"{PKGCONFIG}{name}")  # a link: what it points at is never read
        return
    text = head.decode(errors="replace")
    version = re.search(r"(?m)^Version:\s*(\S+)", text)
    out.provides.add(f"{PKGCONFIG}{name}={version.group(1)}" if version else f"{PKGCONFIG}{name}")
    for m in re.finditer(r"(?m)^Requires:(.*)$", text):
        for req in re.split(r"[,\s]+", m.group(1)):
            # version operators and numbers follow names; keep the names only
            if req and re.match(r"^[A-Za-z_][A-Za-z0-9_.+-]*$", req) and not re.match(r"^[0-9]", req):
                out.depends.add(f"{PKGCONFIG}{req}")


GENERATORS: tuple[Generator, ...] = (shared_libraries, commands, shebangs, pkg_config)


def analyse(root: Path, files: list[str]) -> Findings:
    """Run every generator over `files` (paths relative to `root`)."""
    out = Findings()
    for rel in files:
        for gen in GENERATORS:
            gen(root, rel, out)
    provided_names = {provide_name(p) for p in out.provides}
    # A package does not depend on what it provides itself.
    out.depends = {d for d in out.depends if d not in provided_names}
    return out
