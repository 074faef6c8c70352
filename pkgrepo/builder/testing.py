"""Run a recipe's `test:` block against its installed package.

The package and the test's environment packages are installed from the
packages directory into a fresh root, and each test script runs with that
root as `/` (its own /bin/sh), no network and nothing from the host.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pkgrepo.builder.outdir import PackagesDir
from pkgrepo.builder.sandbox import StepTimeout, give_to_build_user, run_in_root
from pkgrepo.errors import BuildFailed
from pkgrepo.package.extract import check_package
from pkgrepo.package.rootfs import install
from pkgrepo.recipe.load import RecipeFile


def run_test(file: RecipeFile, packages: PackagesDir, log: Path) -> None:
    path, recipe = file.path, file.recipe
    if recipe.test is None:
        return
    root = Path(tempfile.mkdtemp(prefix=f"pkgrepo-test-{recipe.name}-"))
    try:
        needed = packages.closure([recipe.name, *recipe.test.environment])
        install([check_package(Path(p.location)) for p in needed], root)
        give_to_build_user(root)
        for i, step in enumerate(recipe.test.pipeline):
            label = f"test step {i + 1} ({step.name or 'runs'})"
            timeout = step.timeout or recipe.package.timeout
            try:
                rc = run_in_root(root, step.runs or "", log, timeout)
            except StepTimeout:
                raise BuildFailed(
                    f"{path}: {label} was killed after its time limit of {timeout} s; "
                    "raise `timeout:` on the step or the package if it needs longer"
                ) from None
            if rc != 0:
                raise BuildFailed(f"{path}: {label} failed with exit code {rc}; see {log}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
