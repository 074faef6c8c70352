"""The `pkgrepo` command line: parse, call, print (text, or JSON with --json)."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from pkgrepo.errors import PkgrepoError
from pkgrepo.repo.roles import TOP_ROLES

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


INDEX = click.option(
    "--index", "index_spec", show_default=True,
    default=lambda: f"native:{os.environ.get('PKGREPO_PACKAGES', 'packages')}",
    help="native:DIR (a packages directory), native:URL (a signed repository) or debian:PATH[,PATH].",
)  # fmt: skip
PROFILE = click.option("--profile", type=click.Choice(["prod", "dev"]), default="prod", show_default=True,
                       help="prod: the roots only; dev: plus the dev extras (repo-data/dev-extras.yaml).")  # fmt: skip
EXTRA = click.option("--dev-extra", "extras", multiple=True, help="Replace the dev extras (repeatable).")
LIMIT = click.option("--time-limit", type=float, default=30.0, show_default=True,
                     help="Seconds for the solver; past it the best set found is returned, marked not optimal.")  # fmt: skip


def emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pkgrepo")
@click.option("--verbose", "-v", is_flag=True, help="Print the traceback of an internal error.")
def cli(verbose: bool) -> None:
    """Build packages from source, publish them signed, and resolve minimal image closures.

    Exit codes: 0 ok, 1 failed work, 2 bad or hostile input, 3 repository
    server unreachable or failing, 130 interrupted."""


@cli.command()
@click.argument("what", type=click.Choice(["recipe", "image"]))
def schema(what: str) -> None:
    """Print the JSON Schema of a file format."""
    if what == "image":
        from pkgrepo.image.spec import schema as image_schema

        emit(image_schema())
        return
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
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Job budget shared by concurrent builds and their make -j (default: the core count).")
@click.option("--keep-going", "-k", is_flag=True,
              help="After a failure, build everything that does not need the failed recipe; report all.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Build on the workers of this dask.distributed scheduler (see docs/build-farm.md).")
@JSON
def build(
    names, build_all_, recipes_dir, out, cache_dir, check_reproducible, no_test, force, jobs, keep_going,
    scheduler, as_json,
) -> None:
    """Build recipes (by name or path) into the packages directory, dependencies first."""
    from pkgrepo.build.builder import Builder
    from pkgrepo.build.plan import find_recipe
    from pkgrepo.build.session import build_all
    from pkgrepo.build.session import check_reproducible as check
    from pkgrepo.errors import BadInput, BuildFailed
    from pkgrepo.progress import Progress
    from pkgrepo.source import SourceCache

    if not names and not build_all_:
        raise BadInput("name the recipes to build, or pass --all")
    recipes = _load(recipes_dir, names)
    wanted = sorted(recipes) if build_all_ else [find_recipe(recipes, n) for n in names]
    with Progress(as_json) as progress:
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
        results = build_all(builder, recipes, wanted, test=not no_test, force=force, jobs=jobs,
                            keep_going=keep_going, events=progress, scheduler=scheduler)  # fmt: skip
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


REPO_URL = click.option("--repo", "repo_url", help="URL of a signed repository.")
REPO_URL_REQUIRED = click.option("--repo", "repo_url", required=True, help="URL of a signed repository.")
TRUST = click.option("--trust", type=click.Path(path_type=Path), default=None,
                     help="Trusted root metadata (root.json) for the first use of a repository.")  # fmt: skip


def _client(repo_url: str, trust: Path | None):
    from pkgrepo.paths import default_cache
    from pkgrepo.repo.client import RepoClient

    return RepoClient(repo_url, default_cache(), trust)


def _source(packages: Path | None, repo_url: str | None, trust: Path | None):
    """(index, fetch, label) for a packages directory or a verified repository."""
    from pkgrepo.errors import BadInput

    if (packages is None) == (repo_url is None):
        raise BadInput("pass exactly one of --packages DIR or --repo URL")
    if packages is not None:
        from pkgrepo.resolve.native import NativeIndex

        return NativeIndex(packages), lambda p: Path(p.origin), f"native:{packages}"
    from pkgrepo.repo.client import EntriesIndex

    client = _client(repo_url, trust)
    index = EntriesIndex(client.entries(), f"repo:{client.url}")
    return index, lambda p: client.fetch(p.origin), client.url


OVERWRITE = click.option("--overwrite", is_flag=True,
                         help="Replace files in the root that no installed package owns.")  # fmt: skip


def _waiting(message: str) -> None:
    click.echo(message, err=True)


def _install_report(checked, root: Path, as_json: bool, verb: str = "installed") -> None:
    if as_json:
        emit({"root": str(root), verb: [
            {"name": c.info.name, "version": c.info.full_version, "installed_size": c.info.installed_size}
            for c in checked]})  # fmt: skip
        return
    for c in checked:
        click.echo(f"{verb} {c.info.name} {c.info.full_version}")
    if not checked:
        click.echo("nothing to do")


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--root", "root", type=click.Path(path_type=Path), required=True, help="Root filesystem.")
@click.option("--packages", "packages", type=click.Path(path_type=Path), default=None,
              help="Install from a directory of package files.")  # fmt: skip
@REPO_URL
@TRUST
@LIMIT
@OVERWRITE
@JSON
def install(names, root, packages, repo_url, trust, time_limit, overwrite, as_json) -> None:
    """Install packages and the smallest closure of their dependencies into a root.

    From a packages directory (--packages) or a signed repository (--repo): every
    package is verified and checked before anything is written to the root."""
    from pkgrepo.image.apply import apply
    from pkgrepo.image.rootfs import Rootfs
    from pkgrepo.resolve.minimize import minimize

    index, fetch, label = _source(packages, repo_url, trust)
    result = minimize(index, [_parse_root(n) for n in names], time_limit)
    with Rootfs.open(root, create=True, on_wait=_waiting) as dest:
        checked = apply(result, fetch, dest, requested=set(names), source=label, overwrite=overwrite)
    _install_report(checked, root, as_json)


@cli.command()
@click.option("--root", "root", type=click.Path(path_type=Path), required=True, help="Root filesystem.")
@REPO_URL
@TRUST
@LIMIT
@OVERWRITE
@JSON
def upgrade(root, repo_url, trust, time_limit, overwrite, as_json) -> None:
    """Upgrade a root to the newest closure of the packages it asked for."""
    from pkgrepo.errors import BadInput
    from pkgrepo.image.apply import apply
    from pkgrepo.image.rootfs import Rootfs
    from pkgrepo.resolve.minimize import minimize

    with Rootfs.open(root, on_wait=_waiting) as dest:
        requested = sorted(n for n, rec in dest.installed().items() if rec.requested)
        if not requested:
            raise BadInput(f"{root}: nothing installed by request; install something first")
        index, fetch, label = _source(None, repo_url, trust)
        result = minimize(index, [_parse_root(n) for n in requested], time_limit)
        checked = apply(result, fetch, dest, requested=set(requested), source=label, overwrite=overwrite)
    _install_report(checked, root, as_json, "upgraded")


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--root", "root", type=click.Path(path_type=Path), required=True, help="Root filesystem.")
@click.option("--force", is_flag=True, help="Remove even when other installed packages need it.")
def remove(names, root, force) -> None:
    """Remove installed packages from a root."""
    from pkgrepo.image.rootfs import Rootfs

    with Rootfs.open(root, on_wait=_waiting) as dest:
        removed = dest.remove(names, force)
    for name in removed:
        click.echo(f"removed {name}")


@cli.command()
@click.argument("pattern", default="")
@REPO_URL_REQUIRED
@TRUST
@JSON
def search(pattern, repo_url, trust, as_json) -> None:
    """List packages of a signed repository whose name or description contains PATTERN."""
    entries = [e for e in _client(repo_url, trust).entries()
               if pattern.lower() in e["name"].lower() or pattern.lower() in e.get("description", "").lower()]  # fmt: skip
    if as_json:
        emit(entries)
        return
    for e in entries:
        click.echo(f"{e['name']} {e['version']}-r{e['release']}  {e.get('description', '')}")


@cli.command()
@click.argument("name")
@REPO_URL_REQUIRED
@TRUST
@JSON
def info(name, repo_url, trust, as_json) -> None:
    """Show a package of a signed repository, from its verified index."""
    from pkgrepo.errors import BadInput
    from pkgrepo.suggest import suggest

    entries = _client(repo_url, trust).entries()
    found = [e for e in entries if e["name"] == name]
    if not found:
        raise BadInput(f"{name}: not in the repository{suggest(name, [e['name'] for e in entries])}")
    if as_json:
        emit(found)
        return
    for e in found:
        for key in ("name", "version", "release", "description", "license", "homepage", "depends", "provides",
                    "installed_size", "size", "sha256", "path"):  # fmt: skip
            value = e.get(key)
            click.echo(f"{key}: {' '.join(value) if isinstance(value, list) else value}")


@cli.group()
def repo() -> None:
    """Create and maintain a signed repository."""


KEYS = click.option("--keys", "keys_dir", type=click.Path(path_type=Path), default=None,
                    help="Directory of private keys (default: $PKGREPO_KEYS or ~/.config/pkgrepo/keys/REPO-HASH).")  # fmt: skip
EXPIRY = click.option("--expiry", multiple=True, help="ROLE=N[s|m|h|d], e.g. timestamp=1d (repeatable).")
EXPORT = click.option("--export-root", type=click.Path(path_type=Path), default=None,
                      help="Also write the trusted root metadata clients start from here.")  # fmt: skip


def _repository(path: Path, keys_dir: Path | None):
    from pkgrepo.repo.keys import KeyStore, default_keys_dir
    from pkgrepo.repo.repository import Repository

    return Repository(path, KeyStore(keys_dir or default_keys_dir(path)))


@repo.command("init")
@click.argument("path", type=click.Path(path_type=Path))
@KEYS
@EXPIRY
@EXPORT
def repo_init(path, keys_dir, expiry, export_root) -> None:
    """Create an empty repository with new Ed25519 keys for every role."""
    from pkgrepo.repo.repository import parse_expiry

    r = _repository(path, keys_dir)
    r.init(parse_expiry(expiry))
    if export_root:
        r.export_root(export_root)
    click.echo(f"created {path}; keys in {r.keys.directory}; clients trust {path / 'metadata/1.root.json'}")


@repo.command("refresh")
@click.argument("path", type=click.Path(path_type=Path))
@KEYS
@EXPIRY
@click.option("--targets", "targets_too", is_flag=True, help="Re-sign targets as well.")
def repo_refresh(path, keys_dir, expiry, targets_too) -> None:
    """Re-sign snapshot and timestamp (and targets) before they expire."""
    from pkgrepo.repo.repository import parse_expiry

    version = _repository(path, keys_dir).refresh(parse_expiry(expiry), targets_too)
    click.echo(f"refreshed {path}: timestamp version {version}")


@repo.command("rotate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--role", required=True, type=click.Choice(TOP_ROLES))
@KEYS
@EXPORT
def repo_rotate(path, role, keys_dir, export_root) -> None:
    """Replace a role's key; existing clients follow through the new root version."""
    r = _repository(path, keys_dir)
    version = r.rotate(role)
    if export_root:
        r.export_root(export_root)
    click.echo(f"rotated the {role} key of {path}: root version {version}")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--repo", "repo_path", type=click.Path(path_type=Path), required=True, help="Repository directory."
)
@KEYS
@EXPIRY
@click.option("--force", is_flag=True, help="Replace a published name-version-release with different bytes.")
@JSON
def publish(files, repo_path, keys_dir, expiry, force, as_json) -> None:
    """Publish package files into a repository (atomic; concurrent publishes are serialised)."""
    from pkgrepo.repo.repository import parse_expiry

    report = _repository(repo_path, keys_dir).publish(list(files), force, parse_expiry(expiry))
    if as_json:
        emit({"added": report.added, "unchanged": report.unchanged, "timestamp_version": report.version})
        return
    for a in report.added:
        click.echo(f"published {a}")
    for u in report.unchanged:
        click.echo(f"unchanged {u}")


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option("--idle-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds before an idle or stalled connection is closed.")  # fmt: skip
@click.option("--max-connections", default=128, show_default=True, type=click.IntRange(1, 10_000),
              help="Connections served at once; more get 503.")  # fmt: skip
def serve(path, host, port, idle_timeout, max_connections) -> None:
    """Serve a repository over HTTP until interrupted."""
    from pkgrepo.repo.serve import serve as serve_forever

    serve_forever(path, host, port, ready=lambda url: click.echo(f"serving {path} at {url}", err=True),
                  idle_timeout=idle_timeout, max_connections=max_connections)  # fmt: skip


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


def _index(spec: str, trust: Path | None = None):
    """`native:DIR`, `native:URL` (a signed repository) or `debian:PATH[,PATH...]` -> (kind, index)."""
    from pkgrepo.errors import BadInput

    kind, _, where = spec.partition(":")
    if kind == "native" and where.startswith(("http://", "https://")):
        from pkgrepo.repo.client import EntriesIndex

        client = _client(where, trust)
        return kind, EntriesIndex(client.entries(), f"native:{client.url}")
    if kind == "native" and where:
        from pkgrepo.resolve.native import NativeIndex

        return kind, NativeIndex(Path(where))
    if kind == "debian" and where:
        from pkgrepo.paths import default_cache
        from pkgrepo.resolve.debian import DebianIndex

        index = DebianIndex([Path(p) for p in where.split(",")], default_cache() / "index")
        if index.skipped:
            click.echo(
                f"pkgrepo: warning: {index.skipped} stanzas skipped, first: {index.first_skipped}", err=True
            )
        return kind, index
    raise BadInput(f"--index {spec!r}: expected native:DIR, native:URL or debian:PATH[,PATH...]")


def _parse_root(text: str):
    """A typed root: `NAME`, `NAME>=1.2`, `so:libz.so.1` or Debian's `NAME (>= 1.2)`; else BadInput."""
    from pkgrepo.errors import BadInput
    from pkgrepo.resolve.debian import parse_alternative
    from pkgrepo.resolve.deps import parse_dep

    try:
        return parse_alternative(text) if "(" in text else parse_dep(text)
    except BadInput as e:
        raise BadInput(f"root {e}") from None


def _resolve(index_spec, roots, profile, extras, time_limit, trust=None):
    from pkgrepo.resolve.minimize import minimize
    from pkgrepo.resolve.profiles import roots_for

    kind, index = _index(index_spec, trust)
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
        **({"skipped": {"count": index.skipped, "first": index.first_skipped}}
           if getattr(index, "skipped", 0) else {}),
    }  # fmt: skip


@cli.command()
@click.argument("roots", nargs=-1, required=True)
@INDEX
@TRUST
@PROFILE
@EXTRA
@LIMIT
@click.option("--diff", nargs=2, type=click.Choice(["prod", "dev"]), default=None,
              help="Compare two profiles: `--diff prod dev` lists what dev adds.")  # fmt: skip
@click.option("--explain-size", is_flag=True, help="What dropping each package alone would remove.")
@JSON
def resolve(roots, index_spec, trust, profile, extras, time_limit, diff, explain_size, as_json) -> None:
    """The smallest installable closure of ROOTS (exact, with a proof of optimality)."""
    if diff:
        a_prof, b_prof = diff
        index, a = _resolve(index_spec, roots, a_prof, extras, time_limit, trust)
        _, b = _resolve(index_spec, roots, b_prof, extras, time_limit, trust)
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
    index, result = _resolve(index_spec, roots, profile, extras, time_limit, trust)
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
@TRUST
@PROFILE
@EXTRA
@LIMIT
@JSON
def why(roots, target, index_spec, trust, profile, extras, time_limit, as_json) -> None:
    """The shortest chain of dependencies from ROOTS to a package of their closure."""
    from pkgrepo.errors import BadInput
    from pkgrepo.resolve.explain import describe_step
    from pkgrepo.resolve.explain import why as chain
    from pkgrepo.resolve.model import Candidates, clause_text

    index, result = _resolve(index_spec, roots, profile, extras, time_limit, trust)
    steps = chain(result, result.root_keys(Candidates(index)), target)
    if not steps:
        raise BadInput(f"{target}: not in the closure of {' '.join(roots)} ({len(result.packages)} packages)")
    if as_json:
        emit([{"from": None if c is None else p, "clause": None if c is None else clause_text(c), "to": t}
              for p, c, t in steps])  # fmt: skip
        return
    for step in steps:
        click.echo(describe_step(step))


DEBUG_HINT = "run with --verbose or PKGREPO_DEBUG=1 for the traceback"


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; the one place errors become exit codes.

    0 ok, 1 failed work, 2 bad or hostile input (and usage errors), 3 a
    repository server unreachable or failing, 130 interrupted (docs/cli.md).
    Every error is one line on stderr; an unexpected exception is an internal
    error, with its traceback only under --verbose or PKGREPO_DEBUG=1.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = os.environ.get("PKGREPO_DEBUG", "") not in ("", "0")
    try:
        with cli.make_context("pkgrepo", args) as ctx:
            verbose = verbose or bool(ctx.params.get("verbose"))
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("pkgrepo: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return 2 if isinstance(e, click.UsageError) else e.exit_code
    except PkgrepoError as e:
        click.echo(f"pkgrepo: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("pkgrepo: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`pkgrepo search | head`): nothing to say, to no one
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        if verbose:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"pkgrepo: error: {where}{e.strerror or e}", err=True)
        return 1
    except Exception as e:
        if verbose:
            traceback.print_exc()
        detail = " ".join(str(e).split())[:500] or "no detail"
        hint = "" if verbose else f" ({DEBUG_HINT})"
        click.echo(f"pkgrepo: internal error: {type(e).__name__}: {detail}{hint}", err=True)
        return 1


def main() -> None:
    sys.exit(run())


import pkgrepo.cli_attest  # noqa: E402  (registers sbom, verify, scan, affected, rollout)
import pkgrepo.cli_image  # noqa: E402, F401  (registers `image`, `rootfs` and `dockerfile`)
