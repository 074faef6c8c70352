"""What one build from source reads: the recipe, its checked inputs and where its packages go."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.builder.outdir import PackagesDir
from pkgrepo.recipe.load import RecipeFile
from pkgrepo.resolve.model import Package

Report = Callable[[str], None]


@dataclass(frozen=True)
class Variation:
    """What differs between the two builds of `--check-reproducible`."""

    hostname: str = "pkgrepo"
    umask: int = 0o022
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    nice: int = 0  # added to the caller's niceness (only ever raised: any user may, and 19 is the top)


@dataclass(frozen=True)
class BuildContext:
    """One build from source, once its inputs are known and its cache missed."""

    file: RecipeFile
    variation: Variation
    deps: list[Package]  # the build dependencies, from `index`
    sources: list[Path]  # verified source files, in the recipe's order
    patches: dict[str, bytes]  # each patch's bytes by its file name
    key: str  # the cache key of all of the above
    log: Path
    dest_dir: Path  # where the packages go: `index`'s directory, or a scratch directory
    index: PackagesDir  # the packages directory build and run-time dependencies come from
    report: Report

    @property
    def into_index(self) -> bool:
        """The packages go into the packages directory itself (not a reproducibility scratch one)."""
        return self.dest_dir == self.index.directory
