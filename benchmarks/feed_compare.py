"""Open advisories: our recipes against Debian bookworm's current packages of the same software.

Usage: python -m benchmarks.feed_compare [--recipes DIR] [--advisories DIR] [--json]

The same feed (repo-data/advisories) and the same matching (`Advisory.matches`: upstream project
and upstream version) on both sides; the names are mapped once, by the recipes' own
`sources[].debian.package`.

- ours: each recipe at its upstream version, with the ids its patches and release declare fixed
  (the scan counts those only with signed provenance; a recipe's declaration is what the build
  will prove);
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
from pkgrepo.attest.component import Component
from pkgrepo.attest.debian_feed import upstream_version
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", type=Path, default=ROOT / "recipes")
    ap.add_argument("--advisories", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    feed = load_feed(args.advisories or data_dir("advisories"))
    archive = DebianSourceArchive(default_cache() / "debian-apt", lambda _m: None)
    rows = []
    for name, file in sorted(load_requested(args.recipes, []).items()):
        recipe = file.recipe
        source = next((s.debian.package for s in recipe.sources if s.debian), None)
        if recipe.package.upstream is None or source is None:
            continue
        ours = Component(name, recipe.full_version, "", name, "", upstream=recipe.upstream_purl)
        ours_open = [a.id for a in feed.advisories if a.matches(ours) and not (a.names() & set(recipe.fixes))]
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
                "debian_source": source,
                "debian": deb_version,
                "debian_open": len(theirs_open),
            }
        )
    total_ours = sum(r["ours_open"] for r in rows)
    total_debian = sum(r["debian_open"] for r in rows)
    if args.json:
        print(json.dumps({"feed": feed.revision, "rows": rows, "ours": total_ours, "debian": total_debian}))
        return
    print(f"feed {feed.name} {feed.revision[:12]} of {feed.date}")
    print(f"{'recipe':16} {'ours':14} {'open':>5}   {'Debian bookworm':32} {'open':>5}")
    for r in rows:
        print(
            f"{r['recipe']:16} {r['ours']:14} {r['ours_open']:5}   "
            f"{r['debian_source'] + ' ' + r['debian']:32} {r['debian_open']:5}"
        )
    print(f"{'total':16} {'':14} {total_ours:5}   {'':32} {total_debian:5}")


if __name__ == "__main__":
    main()
