"""The `pkgrepo` command line: parse, call, print (text, or JSON with --json)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from pkgrepo.errors import PkgrepoError


def stderr_console():
    """rich's console on stderr, imported only by the commands that show progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


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
        self.console = stderr_console()

    def __enter__(self) -> _Progress:
        if not self.quiet and self.console.is_terminal:
            self.status = self.console.status("starting")
            self.status.__enter__()
        return self

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if self.status is not None:
            self.status.update(message)
        else:
            self.console.print(message, markup=False)

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

    cache = SourceCache(cache_dir, log=lambda m: click.echo(m, err=True))
    for f in add:
        click.echo(f"{cache.add(f)}  {f}")
    if add and not names:
        return
    recipes = _load(recipes_dir, names)
    for name in [find_recipe(recipes, n) for n in names] or sorted(recipes):
        path, recipe = recipes[name]
        for src in recipe.sources:
            click.echo(f"{cache.fetch(src, str(path))}  {name}")


def _index(spec: str):
    """`native:DIR` or `debian:PATH[,PATH...]` -> (kind, index)."""
    from pkgrepo.errors import BadInput

    kind, _, where = spec.partition(":")
    if kind == "native" and where:
        if where.startswith(("http://", "https://")):
            raise BadInput(
                f"{spec}: repository URLs are read once the signed repository lands; pass a directory"
            )
        from pkgrepo.resolve.native import NativeIndex

        return kind, NativeIndex(Path(where))
    if kind == "debian" and where:
        from pkgrepo.paths import default_cache
        from pkgrepo.resolve.debian import DebianIndex

        return kind, DebianIndex([Path(p) for p in where.split(",")], default_cache() / "index")
    raise BadInput(f"--index {spec!r}: expected native:DIR or debian:PATH[,PATH...]")


def _parse_root(text: str):
    from pkgrepo.resolve.debian import parse_alternative
    from pkgrepo.resolve.deps import parse_dep

    return parse_alternative(text) if "(" in text else parse_dep(text)


def _resolve(index_spec, roots, profile, extras, time_limit):
    from pkgrepo.resolve.minimize import minimize
    from pkgrepo.resolve.profiles import roots_for

    kind, index = _index(index_spec)
    wanted = roots_for(profile, list(roots), kind, list(extras))
    return index, minimize(index, [_parse_root(r) for r in wanted], time_limit)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _result_json(index, result, profile) -> dict:
    from pkgrepo.resolve.explain import install_order

    groups, cycles = install_order(result)
    return {
        "index": index.label,
        "profile": profile,
        "roots": [str(r) for r in result.roots],
        "packages": [{"name": p.name, "version": p.version, "installed_size": p.installed_size}
                     for p in result.packages],
        "installed_size": result.installed_size,
        "optimal": result.optimal,
        "solver": result.solver,
        "seconds": round(result.seconds, 4),
        "install_order": groups,
        "cycles": cycles,
    }  # fmt: skip


INDEX = click.option(
    "--index", "index_spec", show_default=True,
    default=lambda: f"native:{os.environ.get('PKGREPO_PACKAGES', 'packages')}",
    help="native:DIR (a packages directory) or debian:PATH[,PATH] (Packages files).",
)  # fmt: skip
PROFILE = click.option("--profile", type=click.Choice(["prod", "dev"]), default="prod", show_default=True,
                       help="prod: the roots only; dev: plus the dev extras (repo-data/dev-extras.yaml).")  # fmt: skip
EXTRA = click.option("--dev-extra", "extras", multiple=True, help="Replace the dev extras (repeatable).")
LIMIT = click.option("--time-limit", type=float, default=30.0, show_default=True,
                     help="Seconds for the solver; past it the best set found is returned, marked not optimal.")  # fmt: skip


@cli.command()
@click.argument("roots", nargs=-1, required=True)
@INDEX
@PROFILE
@EXTRA
@LIMIT
@click.option("--diff", nargs=2, type=click.Choice(["prod", "dev"]), default=None,
              help="Compare two profiles: `--diff prod dev` lists what dev adds.")  # fmt: skip
@click.option("--explain-size", is_flag=True, help="What dropping each package alone would remove.")
@JSON
def resolve(roots, index_spec, profile, extras, time_limit, diff, explain_size, as_json) -> None:
    """The smallest installable closure of ROOTS (exact, with a proof of optimality)."""
    if diff:
        a_prof, b_prof = diff
        index, a = _resolve(index_spec, roots, a_prof, extras, time_limit)
        _, b = _resolve(index_spec, roots, b_prof, extras, time_limit)
        a_names = {p.name for p in a.packages}
        added = [p for p in b.packages if p.name not in a_names]
        removed = [p.name for p in a.packages if p.name not in {q.name for q in b.packages}]
        if as_json:
            emit({a_prof: _result_json(index, a, a_prof), b_prof: _result_json(index, b, b_prof),
                  "added": [{"name": p.name, "version": p.version, "installed_size": p.installed_size}
                            for p in added],
                  "added_size": b.installed_size - a.installed_size, "removed": removed})  # fmt: skip
            return
        click.echo(f"{a_prof}: {len(a.packages)} packages, {_human(a.installed_size)}; "
                   f"{b_prof}: {len(b.packages)} packages, {_human(b.installed_size)}")  # fmt: skip
        click.echo(f"{b_prof} adds {len(added)} packages, {_human(b.installed_size - a.installed_size)}:")
        for p in added:
            click.echo(f"  + {p.name} {p.version} ({_human(p.installed_size)})")
        for name in removed:
            click.echo(f"  - {name}")
        return
    index, result = _resolve(index_spec, roots, profile, extras, time_limit)
    weights = []
    if explain_size:
        from pkgrepo.resolve.explain import dominated_weights
        from pkgrepo.resolve.model import Candidates

        weights = dominated_weights(result, result.root_keys(Candidates(index)))
    if as_json:
        data = _result_json(index, result, profile)
        if explain_size:
            data["explain_size"] = [{"package": w.key, "removes": w.removes, "installed_size": w.size}
                                    for w in weights]  # fmt: skip
        emit(data)
        return
    state = "optimal" if result.optimal else "best found within the time limit, not proven optimal"
    click.echo(f"{len(result.packages)} packages, {_human(result.installed_size)} ({state}; {result.solver}, "
               f"{result.seconds:.2f}s) for {' '.join(roots)} [{profile}] from {index.label}")  # fmt: skip
    for p in result.packages:
        click.echo(f"  {p.name} {p.version}  {_human(p.installed_size)}")
    data = _result_json(index, result, profile)
    click.echo("install order: " + ", ".join("(" + " ".join(g) + ")" if len(g) > 1 else g[0]
                                             for g in data["install_order"]))  # fmt: skip
    for cycle in data["cycles"]:
        click.echo(f"cycle: {' -> '.join(cycle)}")
    for w in weights:
        click.echo(f"dropping {w.key} removes {len(w.removes)} packages, {_human(w.size)}")


@cli.command()
@click.argument("roots", nargs=-1, required=True)
@click.option("--target", required=True, help="The package to explain.")
@INDEX
@PROFILE
@EXTRA
@LIMIT
@JSON
def why(roots, target, index_spec, profile, extras, time_limit, as_json) -> None:
    """The shortest chain of dependencies from ROOTS to a package of their closure."""
    from pkgrepo.errors import BadInput
    from pkgrepo.resolve.explain import describe_step
    from pkgrepo.resolve.explain import why as chain
    from pkgrepo.resolve.model import Candidates, clause_text

    index, result = _resolve(index_spec, roots, profile, extras, time_limit)
    steps = chain(result, result.root_keys(Candidates(index)), target)
    if not steps:
        raise BadInput(f"{target}: not in the closure of {' '.join(roots)} ({len(result.packages)} packages)")
    if as_json:
        emit([{"from": None if c is None else p, "clause": None if c is None else clause_text(c), "to": t}
              for p, c, t in steps])  # fmt: skip
        return
    for step in steps:
        click.echo(describe_step(step))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pkgrepo: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except PkgrepoError as e:
        click.echo(f"pkgrepo: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
