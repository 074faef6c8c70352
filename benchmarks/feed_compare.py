"""Open advisories: our recipes against Debian bookworm's current packages of the same software.

Usage: python -m benchmarks.feed_compare [--recipes DIR] [--advisories DIR] [--json]

The same feed (repo-data/advisories) and the same matching (`Advisory.matches`: upstream project
and upstream version) on both sides; the names are mapped once, by the recipes' own
`sources[].debian.package` (or, for a recipe built from a wheel, `WHEEL_SOURCES`).

- ours: each recipe at its upstream version, with the ids its patches and release declare fixed
  (the scan counts those only with signed provenance; a recipe's declaration is what the build
  will prove); then, "after VEX", also without the ids a statement of repo-data/vex answers
  (`fixed` or `not_affected`) for one of the recipe's packages at its version, as the scan does;
- Debian bookworm: the newest version of the same source in bookworm or bookworm-security
  (`apt-cache madison` in pkgrepo's private apt state), with every CVE the feed says a Debian
  version up to it fixed (`database_specific.debian_fixed`, compared with `dpkg --compare-versions`).

Printed: the count of open advisories per project on each side and the totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from functools import cache
from pathlib import Path

from pkgrepo.attest.advisories import Advisory, data_dir, load_feed
from pkgrepo.attest.component import Component, package_purl
from pkgrepo.attest.debian_feed import upstream_version
from pkgrepo.attest.vex import Statement, load_vex
from pkgrepo.cli.advisories import WHEEL_SOURCES
from pkgrepo.paths import default_cache
from pkgrepo.recipe.load import load_requested
from pkgrepo.source import DebianSourceArchive

ROOT = Path(__file__).resolve().parent.parent
BOOKWORM = ("bookworm", "bookworm-security", "bookworm-updates")


@cache
def dpkg_le(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "le", b], check=False).returncode == 0


def newest(versions: list[str]) -> str:
    best = versions[0]
    for v in versions[1:]:
        if dpkg_le(best, v):
            best = v
    return best


def debian_fixed(adv: Advisory, source: str) -> list[str]:
    data = json.loads(adv.path.read_text())
    return [
        v
        for a in data["affected"]
        if a.get("database_specific", {}).get("debian_source") == source
        for v in a["database_specific"].get("debian_fixed", [])
    ]


def answered(adv: Advisory, purls: list[str], statements: list[Statement]) -> bool:
    """A VEX statement says `fixed` or `not_affected` for the advisory and one of the packages."""
    return any(
        s.status in ("fixed", "not_affected") and s.names() & adv.names() and any(map(s.applies, purls))
        for s in statements
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", type=Path, default=ROOT / "recipes")
    ap.add_argument("--advisories", type=Path, default=None)
    ap.add_argument("--vex", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    feed = load_feed(args.advisories or data_dir("advisories"))
    statements = load_vex(args.vex or data_dir("vex"))
    archive = DebianSourceArchive(default_cache() / "debian-apt", lambda _m: None)
    rows = []
    for name, file in sorted(load_requested(args.recipes, []).items()):
        recipe = file.recipe
        source = next((s.debian.package for s in recipe.sources if s.debian), WHEEL_SOURCES.get(name))
        if recipe.package.upstream is None or source is None:
            continue
        ours = Component(name, recipe.full_version, "", name, "", upstream=recipe.upstream_purl)
        ours_open = [a for a in feed.advisories if a.matches(ours) and not (a.names() & set(recipe.fixes))]
        purls = [package_purl(n, recipe.full_version) for n in [name, *(s.name for s in recipe.subpackages)]]
        after_vex = [a for a in ours_open if not answered(a, purls, statements)]
        versions = [v for v, suite in archive.versions(source) if suite in BOOKWORM]
        if not versions:
            continue
        deb_version = newest(versions)
        purl = recipe.package.upstream.purl
        theirs = Component(
            name, deb_version, "", name, "", upstream=f"{purl}@{upstream_version(deb_version)}"
        )
        theirs_open = [
            a.id
            for a in feed.advisories
            if a.matches(theirs) and not any(dpkg_le(v, deb_version) for v in debian_fixed(a, source))
        ]
        rows.append(
            {
                "recipe": name,
                "ours": recipe.upstream_version,
                "ours_open": len(ours_open),
                "ours_after_vex": len(after_vex),
                "debian_source": source,
                "debian": deb_version,
                "debian_open": len(theirs_open),
            }
        )
    total_ours = sum(r["ours_open"] for r in rows)
    total_vex = sum(r["ours_after_vex"] for r in rows)
    total_debian = sum(r["debian_open"] for r in rows)
    if args.json:
        print(
            json.dumps(
                {
                    "feed": feed.revision,
                    "rows": rows,
                    "ours": total_ours,
                    "ours_after_vex": total_vex,
                    "debian": total_debian,
                }
            )
        )
        return
    print(f"feed {feed.name} {feed.revision[:12]} of {feed.date}")
    print(f"{'recipe':20} {'ours':14} {'open':>5} {'VEX':>5}   {'Debian bookworm':36} {'open':>5}")
    for r in rows:
        print(
            f"{r['recipe']:20} {r['ours']:14} {r['ours_open']:5} {r['ours_after_vex']:5}   "
            f"{r['debian_source'] + ' ' + r['debian']:36} {r['debian_open']:5}"
        )
    print(f"{'total':20} {'':14} {total_ours:5} {total_vex:5}   {'':36} {total_debian:5}")


if __name__ == "__main__":
    main()
