"""Write the catalogue into the repository, whole or not at all.

The site lives in `REPO/.sites/<digest of its files>/`, and `REPO/web` is a
relative symlink to the current one. A new site is written under a temporary
name, renamed to its digest, and `web` is replaced by an atomic rename of a
new link: a reader resolves `web` once per request and gets a file of the old
site or of the new one, never a half-written page. The previous site is kept
(a request that resolved the old link may still be opening its file); older
ones and leftovers of a killed run are removed. Generation runs under the
repository's lock, so it never reads metadata a concurrent publish is writing,
and the same repository always gives the same directory name and bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.attest.advisories import Advisory, load_advisories
from pkgrepo.attest.vex import Statement, load_vex
from pkgrepo.errors import BadInput
from pkgrepo.web.catalogue import gather
from pkgrepo.web.render import render
from pkgrepo.web.verified import verify

LINK = "web"
SITES = ".sites"


@dataclass(frozen=True)
class Site:
    path: Path  # REPO/web
    digest: str
    pages: int
    packages: int


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for path, data in sorted(files.items()):
        h.update(f"{path}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _holds(directory: Path, files: dict[str, bytes]) -> bool:
    """Does `directory` hold exactly `files` (a site written before, not one tampered with)?"""
    found = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if not p.is_dir()}
    if found != set(files):
        return False
    return all(
        not (directory / rel).is_symlink() and (directory / rel).read_bytes() == data
        for rel, data in files.items()
    )


def _name(sites: Path, files: dict[str, bytes], digest: str, current: str) -> tuple[str, bool]:
    """The digest names the site. A directory of that name is reused when it holds exactly
    `files` (True: nothing to write), replaced when it is not the current site, and otherwise
    (the current site, tampered with) left to its readers while the site takes the next name."""
    for name in (digest[:32], *(f"{digest[:32]}-{i}" for i in range(1, 100))):
        path = sites / name
        if not path.exists() and not path.is_symlink():
            return name, False
        if path.is_dir() and not path.is_symlink() and _holds(path, files):
            return name, True
        if name != current:
            return name, False
    raise BadInput(f"{sites}: a hundred sites of the same digest; remove the directory")


def _install(repo: Path, files: dict[str, bytes], digest: str) -> None:
    link = repo / LINK
    if link.exists() and not link.is_symlink():
        raise BadInput(f"{link}: exists and is not the site link pkgrepo writes; move it away")
    sites = repo / SITES
    if sites.is_symlink() or (sites.exists() and not sites.is_dir()):
        raise BadInput(f"{sites}: is not a directory pkgrepo made; remove it")
    sites.mkdir(exist_ok=True)
    previous = os.readlink(link) if link.is_symlink() else ""
    current = os.path.basename(previous) if previous.startswith(f"{SITES}/") else ""
    name, written = _name(sites, files, digest, current)
    final = sites / name
    if not written:
        if final.exists() or final.is_symlink():
            _remove(final)  # not the current site (checked above): nobody is reading it
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=sites))
        for rel, data in files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(0o644)
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        os.rename(tmp, final)
    for stale in repo.glob(f".{LINK}.tmp*"):  # left by a run killed between link and rename
        stale.unlink(missing_ok=True)
    new_link = repo / f".{LINK}.tmp{os.getpid()}"
    new_link.symlink_to(f"{SITES}/{name}")
    os.replace(new_link, link)  # the commit: readers see the new site from here on
    for entry in sites.iterdir():
        if entry.name not in (name, current):
            _remove(entry)


def load_inputs(advisories: Path, vex: Path) -> tuple[list[Advisory], list[Statement]]:
    """The advisories and VEX statements the site matches packages against (checked up front)."""
    return load_advisories(advisories), load_vex(vex)


def generate(
    repo: Path, advisories: list[Advisory], statements: list[Statement], cache: Path | None = None
) -> Site:
    """Verify the repository at `repo`, render its catalogue and make it the served site.
    `cache`: where package file lists are kept (default `$PKGREPO_CACHE/web/files`)."""
    from pkgrepo.paths import default_cache
    from pkgrepo.repo.repository import Repository

    if not (repo / "metadata" / "1.root.json").is_file():
        raise BadInput(
            f"{repo}: not a repository (no metadata/1.root.json); create it with `pkgrepo repo init`"
        )
    with Repository.at(repo).lock():
        verified = verify(repo)
        catalogue = gather(verified, advisories, statements, cache or default_cache() / "web" / "files")
        files = render(catalogue, verified)
        digest = _digest(files)
        _install(repo, files, digest)
    return Site(repo / LINK, digest, sum(p.endswith(".html") for p in files), len(catalogue.packages))
