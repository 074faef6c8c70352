"""Split one staged install tree into the main package and its subpackages.

Explicit subpackages take their globs first, in recipe order; then the default
splits take development files (`-dev`), documentation (`-doc`) and detached
debug info (`-dbg`); the main package keeps the rest. A glob's `*` matches
across `/`, and a glob naming a directory takes everything below it.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.elf import in_lib_dir
from pkgrepo.recipe.model import Dependencies, Recipe

DEV_GLOBS = (
    "usr/include",
    "usr/lib/pkgconfig",
    "usr/share/pkgconfig",
    "usr/share/aclocal",
    "usr/lib/*.a",
    "lib/*.a",
    "usr/lib/*.o",
)
DOC_GLOBS = ("usr/share/man", "usr/share/info", "usr/share/doc")
DBG_GLOBS = ("usr/lib/debug",)
# Never packaged: libtool archives, the info index and gnulib charset.alias (every package would own them).
DROP_GLOBS = ("usr/lib/*.la", "lib/*.la", "usr/share/info/dir", "usr/lib/charset.alias")


@dataclass
class Part:
    name: str
    description: str
    files: list[str] = field(default_factory=list)
    dependencies: Dependencies = field(default_factory=Dependencies)
    kind: str = "main"  # main, dev, doc, dbg, sub


def matches(rel: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    return fnmatch.fnmatchcase(rel, pattern) or rel.startswith(pattern + "/")


def staged_files(root: Path) -> list[str]:
    """Every non-directory path below `root`, plus empty directories, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append(os.path.normpath(os.path.join(rel_dir, name)))
        if not dirnames and not filenames and rel_dir != ".":
            out.append(rel_dir)
    return sorted(out)


def _is_dev_symlink(root: Path, rel: str) -> bool:
    """`libfoo.so -> libfoo.so.1`: only the linker needs it."""
    return in_lib_dir(rel) and rel.endswith(".so") and os.path.islink(root / rel)


def split(root: Path, recipe: Recipe) -> list[Part]:
    """Assign the staged files to packages; only reads the tree (dropped files are left out, not deleted)."""
    remaining = [f for f in staged_files(root) if not any(matches(f, g) for g in DROP_GLOBS)]
    desc = recipe.package.description
    parts: list[Part] = []
    for sub in recipe.subpackages:
        part = Part(
            sub.name, sub.description or f"{desc} ({sub.name})", dependencies=sub.dependencies, kind="sub"
        )
        part.files = [f for f in remaining if any(matches(f, g) for g in sub.files)]
        remaining = [f for f in remaining if f not in set(part.files)]
        parts.append(part)
    defaults = [
        ("dev", recipe.split.dev, DEV_GLOBS, "development files"),
        ("doc", recipe.split.doc, DOC_GLOBS, "documentation"),
        ("dbg", recipe.split.dbg, DBG_GLOBS, "debug information"),
    ]
    for kind, enabled, globs, what in defaults:
        if not enabled:
            continue
        taken = [
            f
            for f in remaining
            if any(matches(f, g) for g in globs) or (kind == "dev" and _is_dev_symlink(root, f))
        ]
        if taken:
            parts.append(Part(f"{recipe.name}-{kind}", f"{desc} ({what})", taken, kind=kind))
            remaining = [f for f in remaining if f not in set(taken)]
    main = Part(recipe.name, desc, remaining, recipe.package.dependencies, kind="main")
    return [main, *parts]
