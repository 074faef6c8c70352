"""Order recipes so that build dependencies are built first."""

from __future__ import annotations

from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.graph import dependency_order, find_cycle
from pkgrepo.recipe.load import Recipes
from pkgrepo.recipe.model import Recipe
from pkgrepo.resolve.deps import parse_dep
from pkgrepo.suggest import suggest


def produced_names(recipe: Recipe) -> set[str]:
    """Package names a recipe may produce, including its default splits."""
    names = {recipe.name, *(s.name for s in recipe.subpackages)}
    names |= {f"{recipe.name}-{kind}" for kind in ("dev", "doc", "dbg")}
    names |= {parse_dep(p).name for p in recipe.package.dependencies.provides}
    return names


def producers(recipes: Recipes) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, file in sorted(recipes.items()):
        for produced in produced_names(file.recipe):
            out.setdefault(produced, name)
    return out


def needs(recipes: Recipes) -> dict[str, set[str]]:
    """Each recipe to the recipes that make its build dependencies and its declared run-time
    dependencies (a build checks its packages' needs against those, so they are built first)."""
    made_by = producers(recipes)
    out: dict[str, set[str]] = {}
    for name, file in recipes.items():
        recipe = file.recipe
        runtime = [
            *recipe.package.dependencies.runtime,
            *(d for sub in recipe.subpackages for d in sub.dependencies.runtime),
        ]
        found = (made_by.get(parse_dep(dep).name) for dep in [*recipe.build_depends, *runtime])
        out[name] = {p for p in found if p is not None and p != name}
    return out


def plan(recipes: Recipes, wanted: list[str], with_tests: bool = True) -> list[str]:
    """Recipe names to build, dependencies first: `wanted`, their build deps and test environments."""
    made_by = producers(recipes)
    graph = needs(recipes)
    cycle = find_cycle(graph)
    if cycle:
        first = recipes[cycle[0]].path
        raise BadInput(
            f"{first}: build-depends form a cycle: {' -> '.join(cycle)}; break it by removing one dependency"
        )
    selected: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in selected:
            continue
        selected.add(name)
        todo += list(graph[name])
        test = recipes[name].recipe.test
        if with_tests and test:
            todo += [made_by[n] for n in (parse_dep(e).name for e in test.environment) if n in made_by]
    return [g[0] for g in dependency_order({n: graph[n] & selected for n in selected})]


def find_recipe(recipes: Recipes, arg: str) -> str:
    """A recipe by name or by path."""
    if arg in recipes:
        return arg
    p = Path(arg)
    for name, file in recipes.items():
        if p.exists() and file.path.resolve() == p.resolve():
            return name
    raise BadInput(f"{arg}: no such recipe in the recipes directory{suggest(arg, recipes)}")
