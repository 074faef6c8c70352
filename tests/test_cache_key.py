"""A build's cache key covers pkgrepo's build code (what the builder imports), and only that."""

from __future__ import annotations

import shutil
from pathlib import Path

from pkgrepo.buildcode import build_code_digest, build_code_files, code_digest
from tests.helpers.cli import ROOT


def copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "pkgrepo"
    shutil.copytree(ROOT / "pkgrepo", tree, ignore=shutil.ignore_patterns("__pycache__", "data"))
    return tree


def touch(path: Path, text: str = "\n") -> None:
    path.write_text(path.read_text() + text)


def test_build_code_is_in_the_key_and_command_code_is_not(tmp_path: Path):
    tree = copy_tree(tmp_path)
    before = build_code_digest(tree)
    assert before == code_digest()
    for path in ("cli/app.py", "image/oci.py", "attest/scan.py", "attest/vex.py", "resolve/indexes.py"):
        touch(tree / path, "\n# a comment\n")
    assert build_code_digest(tree) == before
    touch(tree / "builder" / "split.py")
    assert build_code_digest(tree) != before


def test_what_the_builder_imports_is_build_code(tmp_path: Path):
    """The set follows the imports, relative, absolute and inside functions: a module the builder
    starts to use is covered the day it does; one it stops using is not."""
    tree = copy_tree(tmp_path)
    rel = {p.relative_to(tree).as_posix() for p in build_code_files(tree)}
    # Reached through imports of imports (builder -> cache -> repo.client), not named by a room list.
    assert {"builder/split.py", "package/archive.py", "attest/spdx.py", "repo/client.py"} <= rel
    assert not rel & {"cli/app.py", "attest/scan.py", "web/render.py", "rollout.py"}
    before = build_code_digest(tree)
    touch(tree / "builder" / "split.py", "\n\ndef _late():\n    from ..attest import scan  # noqa: F401\n")
    assert "attest/scan.py" in {p.relative_to(tree).as_posix() for p in build_code_files(tree)}
    changed = build_code_digest(tree)
    touch(tree / "attest" / "scan.py", "\n# now build code\n")
    assert build_code_digest(tree) not in (before, changed)
