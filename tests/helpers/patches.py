"""Whether a source tarball already holds a patch's fix: the reason behind a VEX `fixed` statement
for a fix an upstream release made and Debian patches on an older one."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import yaml

from pkgrepo.paths import default_cache
from tests.helpers.cli import RECIPES, run_cli


def added_blocks(patch: str) -> list[tuple[str, str]]:
    """(file, text) of every run of added lines in a unified diff, leading blanks and indentation
    dropped: what the fixed code must contain, wherever upstream put it."""
    out: list[tuple[str, str]] = []
    path, run = "", []
    for line in [*patch.splitlines(), ""]:
        if line.startswith("+++ "):
            path = re.sub(r"^(a|b|[^/]+)/", "", line[4:].split("\t")[0], count=1)
        elif line.startswith("+"):
            run.append(line[1:].strip())
            continue
        if any(run):
            out.append((path, "\n".join(r for r in run if r)))
        run = []
    return out


def missing_from(tarball: Path, patch: Path) -> list[str]:
    """The added blocks of `patch` that no file of `tarball` (its top directory stripped) holds."""
    wanted = added_blocks(patch.read_text())
    texts: dict[str, str] = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            name = member.name.split("/", 1)[-1]
            if member.isfile() and name in {p for p, _ in wanted}:
                raw = tar.extractfile(member).read().decode()
                texts[name] = "\n".join(line.strip() for line in raw.splitlines() if line.strip())
    return [f"{p}: {block.splitlines()[0]}" for p, block in wanted if block not in texts.get(p, "")]


def source_tarball(recipe: str) -> Path:
    """The recipe's (first) pinned source from the user's source cache, fetched when absent."""
    source = yaml.safe_load((RECIPES / f"{recipe}.yaml").read_text())["sources"][0]
    tarball = default_cache() / "sha256" / source["sha256"]
    if not tarball.is_file():
        run_cli("fetch", recipe, check=True)
    return tarball
