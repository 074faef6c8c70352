"""A build's cache key covers pkgrepo's own build code, and only that."""

from __future__ import annotations

import shutil
from pathlib import Path

from pkgrepo.digest import build_code_digest, code_digest
from tests.helpers.cli import ROOT


def test_build_code_is_in_the_key_and_command_code_is_not(tmp_path: Path):
    tree = tmp_path / "pkgrepo"
    shutil.copytree(ROOT / "pkgrepo", tree, ignore=shutil.ignore_patterns("__pycache__", "data"))
    before = build_code_digest(tree)
    assert before == code_digest()
    (tree / "cli" / "app.py").write_text((tree / "cli" / "app.py").read_text() + "\n# a comment\n")
    (tree / "image" / "oci.py").write_text((tree / "image" / "oci.py").read_text() + "\n")
    assert build_code_digest(tree) == before
    (tree / "builder" / "split.py").write_text((tree / "builder" / "split.py").read_text() + "\n")
    assert build_code_digest(tree) != before
