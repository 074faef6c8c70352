"""`pkgrepo advisories import` and `pkgrepo outdated`: the advisory feed and the recipes' currency."""

from __future__ import annotations

from pathlib import Path

import click

from pkgrepo.cli.attest import ADVISORIES
from pkgrepo.cli.options import CACHE, JSON, RECIPES, emit

# The Debian source of each recipe that builds from an upstream wheel, which Debian's archive does
# not carry (so the recipe has no `sources[].debian` to name it): recipe name → Debian source name.
WHEEL_SOURCES = {
    "py3-click": "python-click",
    "py3-libarchive-c": "python-libarchive-c",
    "py3-securesystemslib": "python-securesystemslib",
    "py3-tuf": "python-tuf",
    "py3-urllib3": "python-urllib3",
    "py3-zstandard": "python-zstandard",
}


def _projects(recipes_dir: Path) -> dict[str, str]:
    """Debian source name → upstream purl, from the recipes (their `sources[].debian.package`, or
    WHEEL_SOURCES for a recipe built from a wheel, and `package.upstream.purl`): the one map between
    Debian's names and ours."""
    from pkgrepo.recipe.load import load_requested

    out: dict[str, str] = {}
    for name, file in sorted(load_requested(recipes_dir, []).items()):
        recipe = file.recipe
        if recipe.package.upstream is None:
            continue
        for src in recipe.sources:
            if src.debian is not None:
                out.setdefault(src.debian.package, recipe.package.upstream.purl)
        if name in WHEEL_SOURCES:
            out.setdefault(WHEEL_SOURCES[name], recipe.package.upstream.purl)
    return out


@click.group()
def advisories() -> None:
    """The advisory feed (OSV records in repo-data/advisories)."""


@advisories.command("import")
@click.option(
    "--from",
    "source",
    type=click.Choice(["debian-changelog"]),
    required=True,
    help="The kind of source: debian-changelog reads Debian source packages' debian/changelog.",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Feed directory to replace (default repo-data/advisories).",
)
@RECIPES
@JSON
def import_(source, paths, out, recipes_dir, as_json) -> None:
    """Convert a vulnerability source into OSV records for the projects the recipes build."""
    from pkgrepo.attest.advisories import data_dir
    from pkgrepo.attest.debian_feed import convert, write_feed

    files: list[Path] = []
    for p in paths:
        files += sorted(p.glob("*.changelog")) if p.is_dir() else [p]
    records, meta = convert(files, _projects(recipes_dir))
    out = out or data_dir("advisories")
    write_feed(out, records, meta)
    if as_json:
        emit({"feed": meta, "advisories": len(records), "out": str(out)})
        return
    click.echo(
        f"{out}: {len(records)} advisories for {len(meta['projects'])} projects from {len(files)} "
        f"changelogs; feed {meta['name']} revision {meta['revision'][:12]} of {meta['date']}"
    )


@click.command()
@RECIPES
@ADVISORIES
@CACHE
@click.option(
    "--debian-sources",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A sources.list (deb-src lines) to ask instead of the host's Debian suites.",
)
@JSON
def outdated(recipes_dir, advisories_dir, cache_dir, debian_sources, as_json) -> None:
    """Each recipe's upstream version against the newest in Debian's suites, and its open advisories."""
    import tempfile

    from pkgrepo.attest.advisories import data_dir, load_feed
    from pkgrepo.attest.component import Component
    from pkgrepo.attest.debian_feed import upstream_version
    from pkgrepo.paths import default_cache
    from pkgrepo.recipe.load import load_requested
    from pkgrepo.resolve.version import compare
    from pkgrepo.source import DebianSourceArchive

    feed = load_feed(advisories_dir or data_dir("advisories"))
    if debian_sources is not None:
        state = Path(tempfile.mkdtemp(prefix="pkgrepo-outdated-"))
    else:
        state = (Path(cache_dir) if cache_dir else default_cache()) / "debian-apt"
    archive = DebianSourceArchive(state, lambda _m: None, debian_sources)
    rows = []
    for name, file in sorted(load_requested(recipes_dir, []).items()):
        recipe = file.recipe
        ours = recipe.upstream_version
        newest, suite = None, None
        source = next((s.debian.package for s in recipe.sources if s.debian), WHEEL_SOURCES.get(name))
        for version, where in archive.versions(source) if source else []:
            up = upstream_version(version)
            if newest is None or compare(up, newest) > 0:
                newest, suite = up, where
        c = Component(name, recipe.full_version, "", name, "", upstream=recipe.upstream_purl, fixes=())
        hits = [a for a in feed.advisories if a.matches(c) and not (a.names() & set(recipe.fixes))]
        state_ = "no data" if newest is None else "outdated" if compare(newest, ours) > 0 else "current"
        rows.append(
            {
                "recipe": name,
                "version": ours,
                "newest": newest,
                "suite": suite,
                "state": state_,
                "covered": feed.covers(c),
                "open_advisories": sorted(a.id for a in hits),
            }
        )
    if as_json:
        emit({"feed": {"name": feed.name, "revision": feed.revision, "date": feed.date}, "recipes": rows})
        return
    click.echo(f"feed {feed.name} {feed.revision[:12]} of {feed.date}")
    for r in rows:
        newest = f"{r['newest']} ({r['suite']})" if r["newest"] else "not in Debian's suites"
        adv = f"{len(r['open_advisories'])} open advisories" if r["covered"] else "no advisory data"
        click.echo(f"{r['recipe']:22} {r['version']:20} {newest:34} {r['state']:9} {adv}")


COMMANDS = [advisories, outdated]
