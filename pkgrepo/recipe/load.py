"""Load recipes from YAML with errors that point at a file and line.

YAML is composed into nodes first so every value keeps its line; a pydantic
validation error is then reported at the line of the offending field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pkgrepo.errors import BadInput
from pkgrepo.recipe.model import Recipe

VAR_RE = re.compile(r"\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
# Substituted when a step runs, not when the recipe loads, so they do not
# change a build's cache key.
LATE_VARS = {"build.jobs"}
BUILD_ROOT = "/build"


def destdir(name: str) -> str:
    """Where a (sub)package's files are installed inside the sandbox."""
    return f"{BUILD_ROOT}/dest/{name}"


Lines = dict[tuple[Any, ...], int]


def _to_python(node: yaml.Node, path: tuple[Any, ...], lines: Lines, where: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, (*path, "<key>"), {}, where)
            if key in out:
                raise BadInput(f"{where}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _to_python(value_node, (*path, key), lines, where)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, i), lines, where) for i, v in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


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


def _line_for(loc: tuple[Any, ...], lines: Lines) -> int:
    # pydantic locations use aliases; walk up until a recorded node is found.
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return 1


def compose(text: str, where: str, what: str) -> tuple[Any, Lines]:
    """YAML text -> (plain data, the line of every value by its path); `what` describes the
    expected top-level mapping for the error when the document is not one."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BadInput(f"{where}:{line}: YAML syntax error: {problem}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise BadInput(f"{where}:1: {what}")
    lines: Lines = {}
    return _to_python(node, (), lines, where), lines


def validation_error(e: ValidationError, lines: Lines, where: str, schema: str) -> BadInput:
    """The first pydantic error as one line at the offending field's line."""
    err = e.errors()[0]
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (see `pkgrepo schema {schema}`)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (+{len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return BadInput(f"{where}:{_line_for(loc, lines)}: {field}: {msg}{more}")


def parse_recipe(text: str, where: str) -> Recipe:
    data, lines = compose(text, where, "a recipe is a YAML mapping with `package`, `sources`, `pipeline`")
    data = _substitute(data, _variables(data), (), lines, where)
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, lines, where, "recipe") from None


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput(f"{p}: cannot read recipe: {e.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{p}: recipe is not UTF-8 text") from None
    recipe = parse_recipe(text, str(p))
    if p.stem != recipe.name:
        raise BadInput(f"{p}: file is named {p.stem!r} but package.name is {recipe.name!r}; rename one")
    return recipe


def load_recipes(directory: str | os.PathLike[str]) -> dict[str, tuple[Path, Recipe]]:
    """All recipes of a directory, by package name."""
    out: dict[str, tuple[Path, Recipe]] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        out[path.stem] = (path, load_recipe(path))
    return out


def load_requested(recipes_dir: Path, args: Iterable[str]) -> dict[str, tuple[Path, Recipe]]:
    """Every recipe of `recipes_dir`, plus recipe files named by path among `args`."""
    if not recipes_dir.is_dir():
        raise BadInput(f"{recipes_dir}: recipes directory does not exist; pass --recipes DIR")
    recipes = load_recipes(recipes_dir)
    for a in args:
        p = Path(a)
        if a.endswith((".yaml", ".yml")) and p.is_file() and p.stem not in recipes:
            recipes[p.stem] = (p, load_recipe(p))
    return recipes
