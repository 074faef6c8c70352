"""Load recipes from YAML with errors that point at a file and line.

YAML is composed into nodes first so every value keeps its line; a pydantic
validation error is then reported at the line of the offending field.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pkgrepo.errors import BadInput
from pkgrepo.recipe.model import Recipe
from pkgrepo.recipe.yamldoc import Lines, compose, read_yaml_file, validation_error

VAR_RE = re.compile(r"\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
# Substituted when a step runs, not when the recipe loads, so they do not
# change a build's cache key.
LATE_VARS = {"build.jobs"}
BUILD_ROOT = "/build"


@dataclass(frozen=True)
class RecipeFile:
    """A recipe and the file it was read from: patches are read beside it, errors name it."""

    path: Path
    recipe: Recipe

    @property
    def name(self) -> str:
        return self.recipe.name


Recipes = dict[str, RecipeFile]


def destdir(name: str) -> str:
    """Where a (sub)package's files are installed inside the sandbox."""
    return f"{BUILD_ROOT}/dest/{name}"


def _substitute(data: Any, env: dict[str, str], path: tuple[Any, ...], lines: Lines, where: str) -> Any:
    if isinstance(data, dict):
        return {k: _substitute(v, env, (*path, k), lines, where) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, env, (*path, i), lines, where) for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in LATE_VARS:
            return m.group(0)
        if key not in env:
            line = lines.get(path, 0)
            known = ", ".join(sorted(env))
            raise BadInput(f"{where}:{line}: unknown variable ${{{{{key}}}}} (known: {known})")
        return env[key]

    return VAR_RE.sub(repl, data)


def _variables(data: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    pkg = data.get("package")
    if isinstance(pkg, dict):
        for key in ("name", "version", "epoch", "release"):
            if key in pkg and isinstance(pkg[key], str | int):
                env[f"package.{key}"] = str(pkg[key])
        if isinstance(pkg.get("name"), str):
            env["targets.destdir"] = destdir(pkg["name"])
    vars_ = data.get("vars")
    if isinstance(vars_, dict):
        for key, value in vars_.items():
            env[f"vars.{key}"] = str(value)
    env["targets.outdir"] = f"{BUILD_ROOT}/dest"
    return env


def parse_recipe(text: str, where: str) -> Recipe:
    data, lines = compose(text, where, "a recipe is a YAML mapping with `package`, `sources`, `pipeline`")
    data = _substitute(data, _variables(data), (), lines, where)
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, lines, where, "recipe") from None


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    p = Path(path)
    recipe = parse_recipe(read_yaml_file(p, "the recipe"), str(p))
    if p.stem != recipe.name:
        raise BadInput(f"{p}: file is named {p.stem!r} but package.name is {recipe.name!r}; rename one")
    _check_fix_patches(p, recipe)
    return recipe


def _check_fix_patches(path: Path, recipe: Recipe) -> None:
    """A patch that is said to fix a vulnerability must exist beside the recipe (a regular file,
    not a link): a fix declared for a patch that is not there would be a false claim."""
    for i, patch in enumerate(recipe.patches):
        if not patch.fixes:
            continue
        try:
            ok = stat.S_ISREG(os.lstat(path.parent / patch.file).st_mode)
        except OSError:
            ok = False
        if not ok:
            raise BadInput(
                f"{path}: patches[{i}]: {patch.file} declares fixes ({', '.join(patch.fixes)}) but is not "
                f"a file beside the recipe; add the patch or remove the claim"
            )


def load_recipes(directory: str | os.PathLike[str]) -> Recipes:
    """All recipes of a directory, by package name."""
    out: Recipes = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        out[path.stem] = RecipeFile(path, load_recipe(path))
    return out


def load_requested(recipes_dir: Path, args: Iterable[str]) -> Recipes:
    """Every recipe of `recipes_dir`, plus recipe files named by path among `args`."""
    if not recipes_dir.is_dir():
        raise BadInput(f"{recipes_dir}: recipes directory does not exist; pass --recipes DIR")
    recipes = load_recipes(recipes_dir)
    for a in args:
        p = Path(a)
        if a.endswith((".yaml", ".yml")) and p.is_file() and p.stem not in recipes:
            recipes[p.stem] = RecipeFile(p, load_recipe(p))
    return recipes
