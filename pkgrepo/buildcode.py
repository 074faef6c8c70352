"""pkgrepo's build code: the modules the builder imports, and their digest.

A build's cache key holds this digest, so that a build cache never hands out packages that other
code (another split, SBOM or package format) would make differently. The set is the builder's import
closure, read from the source with `ast` (imports inside functions count too), rather than a list of
rooms kept by hand: a command, a scan or an image change does not send every build back to a cold
start, and a module the builder starts to use is covered the day it does.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

# Where a build starts: every module of the builder room.
ENTRY = "builder"


def _module_name(rel: Path) -> str:
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The pkgrepo modules (and their parent packages) that the module `name` at `path` imports,
    as names relative to the pkgrepo package ("" is pkgrepo itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(["pkgrepo", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module, *(f"{module}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            head, _, rest = target.partition(".")
            if head != "pkgrepo":
                continue
            parts = rest.split(".") if rest else []
            found.update(p for i in range(len(parts) + 1) if (p := ".".join(parts[:i])) in modules)
    return found


def build_code_files(root: Path) -> list[Path]:
    """The files of the pkgrepo package at `root` that a build runs: the builder room and all it
    imports, transitively, with the packages (`__init__.py`) on the way."""
    modules = {
        _module_name(p.relative_to(root)): p for p in root.rglob("*.py") if "__pycache__" not in p.parts
    }
    todo = [m for m in modules if m == ENTRY or m.startswith(ENTRY + ".")]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imported(name, modules[name], modules))
    return sorted(modules[m] for m in seen)


def build_code_digest(root: Path) -> str:
    """The digest of the build code of the pkgrepo package at `root`."""
    h = hashlib.sha256()
    for path in build_code_files(root):
        h.update(f"{path.relative_to(root).as_posix()}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def code_digest() -> str:
    """The digest of the running pkgrepo's build code."""
    return build_code_digest(Path(__file__).resolve().parent)
