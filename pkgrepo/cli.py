"""The `pkgrepo` command line: parse, call, print (text, or JSON with --json)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console

from pkgrepo.errors import PkgrepoError

err = Console(stderr=True, highlight=False)

RECIPES = click.option(
    "--recipes", "recipes_dir", type=click.Path(path_type=Path), show_default=True,
    default=lambda: os.environ.get("PKGREPO_RECIPES", "recipes"), help="Directory of recipes (*.yaml).",
)  # fmt: skip
OUT = click.option(
    "--out", "out", type=click.Path(path_type=Path), show_default=True,
    default=lambda: os.environ.get("PKGREPO_PACKAGES", "packages"), help="Packages directory.",
)  # fmt: skip
CACHE = click.option(
    "--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
    help="Source cache (default $PKGREPO_CACHE or ~/.cache/pkgrepo).",
)  # fmt: skip
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")


def emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pkgrepo")
def cli() -> None:
    """Build packages from source, publish them signed, and resolve minimal image closures."""


@cli.command()
@click.argument("what", type=click.Choice(["recipe"]))
def schema(what: str) -> None:
    """Print the JSON Schema of a file format."""
    from pkgrepo.recipe.model import Recipe

    emit(Recipe.model_json_schema(by_alias=True))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def lint(paths: tuple[Path, ...]) -> None:
    """Check recipes without building them."""
    from pkgrepo.recipe.load import load_recipe

    for p in paths:
        load_recipe(p)
        click.echo(f"{p}: ok")


def _load(recipes_dir: Path, args: tuple[str, ...]):
    from pkgrepo.errors import BadInput
    from pkgrepo.recipe.load import load_recipe, load_recipes

    if not recipes_dir.is_dir():
        raise BadInput(f"{recipes_dir}: recipes directory does not exist; pass --recipes DIR")
    recipes = load_recipes(recipes_dir)
    for a in args:
        p = Path(a)
        if a.endswith((".yaml", ".yml")) and p.is_file() and p.stem not in recipes:
            recipes[p.stem] = (p, load_recipe(p))
    return recipes


class _Progress:
    """rich progress on a terminal; plain lines otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.status = None

    def __enter__(self) -> _Progress:
        if not self.quiet and err.is_terminal:
            self.status = err.status("starting")
            self.status.__enter__()
        return self

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if self.status is not None:
            self.status.update(message)
        else:
            err.print(message)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--all", "build_all_", is_flag=True, help="Build every recipe.")
@RECIPES
@OUT
@CACHE
@click.option(
    "--check-reproducible", is_flag=True, help="Build twice under different conditions and compare."
)
@click.option("--no-test", is_flag=True, help="Skip the recipes' test blocks.")
@click.option("--force", is_flag=True, help="Rebuild the named recipes even when cached.")
@JSON
def build(
    names, build_all_, recipes_dir, out, cache_dir, check_reproducible, no_test, force, as_json
) -> None:
    """Build recipes (by name or path) into the packages directory, dependencies first."""
    from pkgrepo.build.builder import Builder
    from pkgrepo.build.plan import find_recipe
    from pkgrepo.build.session import build_all
    from pkgrepo.build.session import check_reproducible as check
    from pkgrepo.errors import BadInput, BuildFailed
    from pkgrepo.source import SourceCache

    if not names and not build_all_:
        raise BadInput("name the recipes to build, or pass --all")
    recipes = _load(recipes_dir, names)
    wanted = sorted(recipes) if build_all_ else [find_recipe(recipes, n) for n in names]
    with _Progress(as_json) as progress:
        builder = Builder(out, SourceCache(cache_dir, log=progress), report=progress)
        if check_reproducible:
            report = check(builder, recipes, wanted)
            bad = {n: d for n, d in report.items() if d}
            if as_json:
                emit({n: [{"package": x.package, "detail": x.detail} for x in d] for n, d in report.items()})
            else:
                for n, d in report.items():
                    click.echo(f"{n}: {'NOT reproducible' if d else 'reproducible'}")
                    for x in d:
                        click.echo(f"  {x.package}: {x.detail}")
            if bad:
                first = next(iter(bad))
                raise BuildFailed(
                    f"{first}: not reproducible: {bad[first][0].package}: {bad[first][0].detail}"
                )
            return
        results = build_all(builder, recipes, wanted, test=not no_test, force=force)
    if as_json:
        emit([
            {"name": r.name, "cached": r.cached, "seconds": round(r.seconds, 3),
             "packages": [str(p) for p in r.packages], "log": str(r.log)}
            for r in results
        ])  # fmt: skip
    else:
        for r in results:
            state = "cached" if r.cached else f"built in {r.seconds:.1f}s"
            click.echo(f"{r.name}: {state}: {', '.join(p.name for p in r.packages)}")


@cli.command()
@click.argument("package", type=click.Path(path_type=Path))
@JSON
def show(package: Path, as_json: bool) -> None:
    """Print a package file's metadata and file list."""
    from pkgrepo.package.archive import read_head

    info, manifest = read_head(package)
    if as_json:
        emit(
            {
                "info": info.model_dump(mode="json"),
                "files": [e.model_dump(exclude_none=True) for e in manifest],
            }
        )
        return
    for key, value in info.model_dump(mode="json").items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key}: {value}")
    click.echo("files:")
    for e in manifest:
        extra = f" -> {e.target}" if e.target else (f" {e.size} {e.sha256}" if e.type == "file" else "")
        click.echo(f"  {e.mode:04o} {e.type:7} /{e.path}{extra}")


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--packages", "packages", type=click.Path(path_type=Path), required=True,
              help="Directory of package files to install from.")  # fmt: skip
@click.option("--root", "root", type=click.Path(path_type=Path), required=True, help="Root filesystem.")
@JSON
def install(names, packages, root, as_json) -> None:
    """Install packages and their dependencies from a packages directory into a root."""
    from pkgrepo.image.rootfs import install as do_install
    from pkgrepo.package.extract import check_package
    from pkgrepo.resolve.local import PackageDir

    closure = PackageDir(packages).closure(list(names))
    checked = [check_package(a.path) for a in closure]  # everything checked before anything is written
    do_install(checked, root)
    if as_json:
        emit({"root": str(root), "installed": [
            {"name": c.info.name, "version": c.info.full_version, "installed_size": c.info.installed_size}
            for c in checked]})  # fmt: skip
    else:
        for c in checked:
            click.echo(f"installed {c.info.name} {c.info.full_version}")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--add", "add", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Put a local file into the source cache.")  # fmt: skip
@RECIPES
@CACHE
def fetch(names, add, recipes_dir, cache_dir) -> None:
    """Fetch and verify the sources of recipes (all when none is named) into the cache."""
    from pkgrepo.build.plan import find_recipe
    from pkgrepo.source import SourceCache

    cache = SourceCache(cache_dir, log=lambda m: err.print(m))
    for f in add:
        click.echo(f"{cache.add(f)}  {f}")
    if add and not names:
        return
    recipes = _load(recipes_dir, names)
    for name in [find_recipe(recipes, n) for n in names] or sorted(recipes):
        path, recipe = recipes[name]
        for src in recipe.sources:
            click.echo(f"{cache.fetch(src, str(path))}  {name}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("pkgrepo: aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except PkgrepoError as e:
        err.print(f"pkgrepo: error: {e}", markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
