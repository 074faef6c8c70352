"""The rooms of pkgrepo import only downwards, in the order docs/architecture.md draws.

Every `import pkgrepo.X` / `from pkgrepo.X import ...` anywhere in a room (also
inside functions) is an edge; an edge to a room higher in ROOMS fails the test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "pkgrepo"
BASE = {"errors", "digest", "buildcode", "paths", "suggest", "graph", "elf", "hosttools", "limits", "safeio"}
# Lowest first: a room may import its own modules, the base modules and the rooms before it.
ROOMS = [
    "package",
    "repo",
    "resolve",
    "recipe",
    "source",
    "attest",
    "builder",
    "image",
    "web",
    "rollout",
    "progress",
    "cli",
    "__main__",
]


def room_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("pkgrepo.")}
    return found


def modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "data" not in p.relative_to(PKG).parts)


def test_every_room_is_placed():
    rooms = {room_of(p) for p in modules()} - {"__init__"}
    assert rooms <= BASE | set(ROOMS), f"place {sorted(rooms - BASE - set(ROOMS))} in ROOMS or BASE"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_go_down(path: Path):
    room = room_of(path)
    allowed = set(BASE) | {room}
    if room in ROOMS:
        allowed |= set(ROOMS[: ROOMS.index(room)])
    elif room in BASE:
        allowed = {room, "errors"}
    upward = imports(path) - allowed
    assert not upward, f"{path.relative_to(PKG)} ({room}) imports {sorted(upward)}, above it"


def test_the_client_path_needs_no_pydantic():
    """What the package manager inside dev images runs (issue 10) imports neither pydantic nor
    the recipe and build rooms, whose models need it."""
    import subprocess
    import sys

    probe = (
        "import sys, pkgrepo.image.apply, pkgrepo.resolve.sources, pkgrepo.repo.client, pkgrepo.resolve.indexes; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' "
        "or m.startswith(('pkgrepo.recipe', 'pkgrepo.builder'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def _text_owners(needle: str) -> list[str]:
    """The modules whose source contains `needle`."""
    return sorted(str(p.relative_to(PKG)) for p in modules() if needle in p.read_text())


def test_one_module_owns_the_build_records():
    """`.builds/NAME.json` is read and written through `builder/records.py` only (issue 20)."""
    assert _text_owners('".builds"') == ["builder/records.py"]
    users = {str(p.relative_to(PKG)) for p in modules() if re.search(r"\bRECORDS\b", p.read_text())}
    users -= {"builder/records.py"}
    assert not users, f"{sorted(users)} name RECORDS; use read_record/write_record"


def test_the_package_suffix_is_written_once():
    """Every package file name is made and recognised with `package.meta.PACKAGE_SUFFIX`."""
    assert _text_owners(".pkg.tar.zst") == ["package/meta.py"]


@pytest.mark.parametrize("needle", ['"so:', '"cmd:', '"pc:', '.split("=", 1)', 'partition("=")'])
def test_dependency_strings_are_parsed_in_one_place(needle: str):
    """Dependency and provide clauses are taken apart by `resolve/deps.py` only (issue 20)."""
    owners = set(_text_owners(needle)) - {"resolve/deps.py"}
    if needle == 'partition("=")':
        owners -= {"repo/repository.py"}  # threshold settings (ROLE=N), not dependency clauses
        owners -= {"attest/vex.py"}  # a purl's qualifiers (key=value), not dependency clauses
    assert not owners, f"{sorted(owners)} take dependency strings apart by hand; use pkgrepo.resolve.deps"


def _imported_names(path: Path, module: str) -> set[str]:
    """The names `path` takes from `module`, anywhere (also inside functions); `*` for the module itself."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == module:
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == module.rpartition(".")[0]:
            found |= {"*" for a in node.names if a.name == module.rpartition(".")[2]}
        elif isinstance(node, ast.Import):
            found |= {"*" for a in node.names if a.name == module}
    return found


def test_one_install_path():
    """Outside the builder (whose sandbox roots use the package-level primitive), only
    `image/apply.py` writes packages into a root: no other module takes `Rootfs` or `install`
    from `package/rootfs.py` (reading a root's database through `installed_in` is fine)."""
    writers = {
        str(p.relative_to(PKG))
        for p in modules()
        if room_of(p) not in ("package", "builder")
        and _imported_names(p, "pkgrepo.package.rootfs") & {"Rootfs", "install", "*"}
    }
    assert writers == {"image/apply.py"}, f"{sorted(writers - {'image/apply.py'})} install around apply()"


def test_one_opener_builds_repository_clients():
    """Commands open a packages directory, a repository or an index through
    `resolve/sources.open_source` only; the builder's remote build cache has its own client."""
    builders = set(_text_owners("RepoClient(")) | set(_text_owners("open_client("))
    assert builders <= {"repo/client.py", "resolve/sources.py", "builder/cache.py"}, sorted(builders)
    for needle in ("NativeIndex(", "DebianIndex(", "RepositoryIndex("):
        owners = set(_text_owners(needle)) - {"resolve/sources.py", "resolve/native.py", "resolve/debian.py"}
        owners -= {"resolve/indexes.py"}  # RepositoryIndex's own module
        assert not owners, (
            f"{sorted(owners)} open an index themselves; use pkgrepo.resolve.sources.open_source"
        )
