"""Refresh repo-data/advisories from Debian's archive: the debian/changelog of every Debian source
a recipe names, at the newest version each suite offers that the archive serves, then
`pkgrepo advisories import --from debian-changelog`.

    .venv/bin/python scripts/refresh-advisories.py [--keep DIR]

Downloads go through apt (`apt-get source --print-uris`, then apt's own `apt-helper download-file`
with the SHA256 the signed Sources index gives) in pkgrepo's private apt state; only the small
`.debian.tar.*` (or a native package's `.tar.*`) is fetched, never the upstream tarball.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pkgrepo.cli.advisories import _projects
from pkgrepo.paths import default_cache
from pkgrepo.resolve.version import compare
from pkgrepo.source import DebianSourceArchive

HELPER = "/usr/lib/apt/apt-helper"


def debian_tarball(archive: DebianSourceArchive, package: str, version: str, into: Path) -> Path | None:
    run = subprocess.run(
        ["apt-get", "-q", *archive._options(), "source", "--print-uris", f"{package}={version}"],
        capture_output=True,
        text=True,
    )
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or ".orig" in parts[1] or not (".debian.tar." in parts[1] or ".tar." in parts[1]):
            continue
        target = into / parts[1]
        ok = subprocess.run(
            [
                HELPER,
                "-o",
                "APT::Sandbox::User=root",
                "download-file",
                parts[0].strip("'"),
                str(target),
                parts[3],
            ],
            capture_output=True,
        )
        return target if ok.returncode == 0 else None
    return None


def changelog(tarball: Path) -> bytes | None:
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.split("/")[-2:] == ["debian", "changelog"]:
                f = tar.extractfile(member)
                return f.read() if f else None
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the changelogs here (default: a temporary directory)")
    ap.add_argument("--recipes", type=Path, default=Path("recipes"))
    ap.add_argument("--out", type=Path, default=Path("repo-data/advisories"))
    args = ap.parse_args()
    archive = DebianSourceArchive(default_cache() / "debian-apt", lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="advisories-") as tmp:  # removed, whatever happens
        return _refresh(archive, args, Path(tmp))


def _refresh(archive: DebianSourceArchive, args: argparse.Namespace, work: Path) -> int:
    keep = args.keep or work / "changelogs"
    keep.mkdir(parents=True, exist_ok=True)
    for source in sorted(_projects(args.recipes)):
        by_suite: dict[str, list[str]] = {}
        for version, suite in archive.versions(source):
            by_suite.setdefault(suite, []).append(version)
        for suite, versions in sorted(by_suite.items()):
            for version in sorted(versions, key=lambda v: _Key(v), reverse=True):  # newest served
                tarball = debian_tarball(archive, source, version, work)
                text = changelog(tarball) if tarball else None
                if text:
                    (keep / f"{source}_{version.replace(':', '%3a')}.changelog").write_bytes(text)
                    print(f"{source} {version} ({suite})", file=sys.stderr)
                    break
            else:
                print(f"{source}: no changelog served for {suite}", file=sys.stderr)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pkgrepo",
            "advisories",
            "import",
            "--from",
            "debian-changelog",
            str(keep),
            "--out",
            str(args.out),
            "--recipes",
            str(args.recipes),
        ],
    ).returncode


class _Key:
    def __init__(self, v: str):
        self.v = v

    def __lt__(self, other: _Key) -> bool:
        return compare(self.v, other.v) < 0


if __name__ == "__main__":
    sys.exit(main())
