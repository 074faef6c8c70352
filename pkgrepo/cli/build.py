"""`pkgrepo build`, `fetch`, `show`, `lint` and `schema`: recipes in, packages out."""

from __future__ import annotations

from pathlib import Path

import click

from pkgrepo.cli.options import CACHE, JSON, OUT, RECIPES, TRUST, emit


@click.command()
@click.argument("what", type=click.Choice(["recipe", "image"]))
def schema(what: str) -> None:
    """Print the JSON Schema of a file format."""
    import json

    if what == "image":
        from pkgrepo.image.spec import schema as image_schema

        document = image_schema()
    else:
        from pkgrepo.recipe.model import Recipe

        document = Recipe.model_json_schema(by_alias=True)
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def lint(paths: tuple[Path, ...]) -> None:
    """Check recipes without building them."""
    from pkgrepo.recipe.load import load_recipe

    for p in paths:
        load_recipe(p)
        click.echo(f"{p}: ok")


@click.command()
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
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Job budget shared by concurrent builds and their make -j (default: the core count).",
)
@click.option(
    "--keep-going",
    "-k",
    is_flag=True,
    help="After a failure, build everything that does not need the failed recipe; report all.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Build on the workers of this dask.distributed scheduler (see docs/build-farm.md).",
)
@click.option(
    "--cache-from",
    "cache_from",
    multiple=True,
    metavar="DIR|URL",
    help="Take builds with the same inputs from this build cache: a directory, or a signed "
    "repository's URL (with --trust). Repeatable; asked in order.",
)
@click.option(
    "--trust-cache-key",
    "cache_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PUB",
    help="Also accept --cache-from builds whose provenance this public key signed (beside your own "
    "provenance key and ~/.config/pkgrepo/cache-keys/*.pub). Repeatable.",
)
@click.option(
    "--cache-to",
    "cache_to",
    type=click.Path(path_type=Path),
    default=None,
    help="Also store every finished build in this build cache directory.",
)
@TRUST
@JSON
def build(
    names,
    build_all_,
    recipes_dir,
    out,
    cache_dir,
    check_reproducible,
    no_test,
    force,
    jobs,
    keep_going,
    scheduler,
    cache_from,
    cache_keys,
    cache_to,
    trust,
    as_json,
) -> None:
    """Build recipes (by name or path) into the packages directory, dependencies first."""
    from pkgrepo.builder.builder import Builder
    from pkgrepo.builder.cache import DirectoryCache, open_cache, trusted_keys
    from pkgrepo.builder.plan import find_recipe
    from pkgrepo.builder.session import build_all
    from pkgrepo.builder.session import check_reproducible as check
    from pkgrepo.errors import BadInput, BuildFailed
    from pkgrepo.progress import Progress
    from pkgrepo.recipe.load import load_requested
    from pkgrepo.source import SourceCache

    if not names and not build_all_:
        raise BadInput("name the recipes to build, or pass --all")
    recipes = load_requested(recipes_dir, names)
    wanted = sorted(recipes) if build_all_ else [find_recipe(recipes, n) for n in names]
    with Progress(as_json) as progress:
        keys = trusted_keys(cache_keys) if cache_from else {}
        caches = [open_cache(c, trust, keys) for c in cache_from]
        builder = Builder(
            out,
            SourceCache(cache_dir, log=progress),
            report=progress,
            caches=caches,
            cache_to=DirectoryCache(cache_to) if cache_to else None,
        )
        if check_reproducible:
            report = check(builder, recipes, wanted)
            if as_json:
                emit(
                    {
                        "recipes": {
                            n: [{"package": x.package, "detail": x.detail} for x in d]
                            for n, d in report.items()
                        }
                    }
                )
            else:
                for n, d in report.items():
                    click.echo(f"{n}: {'NOT reproducible' if d else 'reproducible'}")
                    for x in d:
                        click.echo(f"  {x.package}: {x.detail}")
            bad = {n: d for n, d in report.items() if d}
            if bad:
                first = next(iter(bad))
                raise BuildFailed(
                    f"{first}: not reproducible: {bad[first][0].package}: {bad[first][0].detail}"
                )
            return
        results = build_all(
            builder,
            recipes,
            wanted,
            test=not no_test,
            force=force,
            jobs=jobs,
            keep_going=keep_going,
            events=progress,
            scheduler=scheduler,
        )
    if as_json:
        emit(
            {
                "builds": [
                    {
                        "name": r.name,
                        "cached": r.cached,
                        "seconds": round(r.seconds, 3),
                        "packages": [str(p) for p in r.packages],
                        "log": str(r.log),
                    }
                    for r in results
                ]
            }
        )
        return
    for r in results:
        state = "cached" if r.cached else f"built in {r.seconds:.1f}s"
        click.echo(f"{r.name}: {state}: {', '.join(p.name for p in r.packages)}")


@click.command()
@click.argument("package", type=click.Path(path_type=Path))
@JSON
def show(package: Path, as_json: bool) -> None:
    """Print a package file's metadata and file list."""
    from pkgrepo.package.archive import read_head

    info, manifest = read_head(package)
    if as_json:
        emit({"info": info.to_dict(), "files": [e.to_dict() for e in manifest]})
        return
    for key, value in info.to_dict().items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key}: {value}")
    click.echo("files:")
    for e in manifest:
        extra = f" -> {e.target}" if e.target else (f" {e.size} {e.sha256}" if e.type == "file" else "")
        click.echo(f"  {e.mode:04o} {e.type:7} /{e.path}{extra}")


@click.command()
@click.argument("names", nargs=-1)
@click.option(
    "--add",
    "add",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Put a local file into the source cache.",
)
@RECIPES
@CACHE
def fetch(names, add, recipes_dir, cache_dir) -> None:
    """Fetch and verify the sources of recipes (all when none is named) into the cache."""
    from pkgrepo.builder.plan import find_recipe
    from pkgrepo.recipe.load import load_requested
    from pkgrepo.source import SourceCache

    cache = SourceCache(cache_dir, log=lambda m: click.echo(m, err=True))
    for f in add:
        click.echo(f"{cache.add(f)}  {f}")
    if add and not names:
        return
    recipes = load_requested(recipes_dir, names)
    for name in [find_recipe(recipes, n) for n in names] or sorted(recipes):
        file = recipes[name]
        for src in file.recipe.sources:
            click.echo(f"{cache.fetch(src, str(file.path))}  {name}")


COMMANDS = [schema, lint, build, show, fetch]
