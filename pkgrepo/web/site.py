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

Generation is incremental: each page has a key, the digest of everything its bytes depend
on (`render`), and the user's cache (`$PKGREPO_CACHE/web/sites/NAME.json`) records for each site written the key and sha256 of each of its pages. A page
whose key is unchanged since the current site is taken from that site, read without
following links and checked against the recorded sha256, and hard-linked into the new
one; any other page is rendered. The bytes are those of a full generation (tested): the
record lives in the user's cache, not in the repository, so a page altered in the served
tree is never carried forward, only rendered anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pkgrepo.attest.advisories import Advisory, load_advisories
from pkgrepo.attest.vex import Statement
from pkgrepo.errors import BadInput
from pkgrepo.repo.repository import Vouched
from pkgrepo.safeio import read_regular, untrusted_json
from pkgrepo.web.catalogue import Heads, gather
from pkgrepo.web.render import render
from pkgrepo.web.verified import Verified, verify
from pkgrepo.web.vexcache import load_vex_cached

if TYPE_CHECKING:
    from pkgrepo.web.ahead import Ahead

LINK = "web"
SITES = ".sites"
PAGE_BYTES = 256 * 2**20  # a page of the site: python3's file list is about 1 MiB
KEPT_RECORDS = 64  # page records kept in the cache (one per site written, any repository)


@dataclass(frozen=True)
class Site:
    path: Path  # REPO/web
    digest: str
    pages: int
    packages: int
    reused: int = 0  # pages taken from the previous site, not rendered


@dataclass
class _Previous:
    """The current site's pages, as the cache records them: path -> (key, sha256)."""

    directory: Path | None
    record: dict[str, tuple[str, str]]
    links: dict[str, tuple[Path, int]] = field(default_factory=dict)  # path -> (file, inode)
    _dirs: dict[str, bool] = field(default_factory=dict)

    def _real(self, path: str) -> bool:
        """Are the directories leading to `path` in the site directories, not links out of it?"""
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            assert self.directory is not None
            chain = [self.directory.parent, self.directory]  # REPO/.sites, the site
            for part in Path(parent).parts:
                chain.append(chain[-1] / part)
            self._dirs[parent] = not any(p.is_symlink() for p in chain)
        return self._dirs[parent]

    def reuse(self, path: str, key: str) -> bytes | None:
        """The bytes of the current site's page at `path` when it was made from `key` and is
        still the file recorded (a regular file of the recorded sha256); None otherwise."""
        known = self.record.get(path)
        if self.directory is None or known is None or known[0] != key or not self._real(path):
            return None
        source = self.directory / path
        try:
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o644:
                return None
            data = f.read()
        if hashlib.sha256(data).hexdigest() != known[1]:
            return None
        self.links[path] = (source, st.st_ino)
        return data


OBSOLETE = ("files", "learnt")  # caches of earlier versions (file lists, learnt records): removed


def _last_used(path: Path) -> float:
    """When `path` itself (a link is not followed) was last used; 0 when it is gone."""
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _records(cache: Path) -> Path:
    return cache / "sites"


def _previous(repo: Path, cache: Path) -> _Previous:
    link = repo / LINK
    target = os.readlink(link) if link.is_symlink() else ""
    name = os.path.basename(target) if target.startswith(f"{SITES}/") else ""
    try:  # not followed if a link, never blocking on a FIFO, bounded
        raw = untrusted_json(read_regular(_records(cache) / f"{name}.json", "page record")) if name else {}
        record = {str(p): (str(k), str(h)) for p, (k, h) in raw.items()}
    except (OSError, BadInput, ValueError, TypeError, AttributeError):
        return _Previous(None, {})  # no record (or not one): every page is rendered
    return _Previous(repo / SITES / name, record)


def _remember(cache: Path, name: str, record: dict[str, list[str]]) -> None:
    """Record the pages of site `name` for the next generation; a cache that cannot be
    written only makes the next generation render every page."""
    records = _records(cache)
    with contextlib.suppress(OSError):
        records.mkdir(parents=True, exist_ok=True)
        dest = records / f"{name}.json"
        tmp = records / f".{name}.{os.getpid()}"
        tmp.write_bytes(json.dumps(record, separators=(",", ":")).encode())
        os.replace(tmp, dest)
        kept = sorted(records.glob("*.json"), key=_last_used, reverse=True)
        for old in kept[KEPT_RECORDS:]:
            old.unlink(missing_ok=True)


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _linked(link: tuple[Path, int], dest: str) -> bool:
    """Hard-link `dest` to `link`'s file when it is still the inode whose bytes were checked."""
    with contextlib.suppress(OSError):
        os.link(link[0], dest, follow_symlinks=False)
        if os.lstat(dest).st_ino == link[1]:
            return True
        os.unlink(dest)
    return False


def _write_tree(top: str, files: dict[str, bytes], links: dict[str, tuple[Path, int]]) -> None:
    """Write `files` into the new, empty directory `top`: each directory made once (0755), each
    page hard-linked to the previous site's file in `links` or written as a new file (0644),
    whatever the umask (a chmod each: reading the umask would mean changing it, for every
    thread of the process)."""
    dirs = set()
    for rel in files:
        parent = posixpath.dirname(rel)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    os.chmod(top, 0o755)  # mkdtemp made it 0700
    for d in sorted(dirs):  # a parent sorts before what it holds
        os.mkdir(f"{top}/{d}")
        os.chmod(f"{top}/{d}", 0o755)
    for rel, data in files.items():
        dest = f"{top}/{rel}"
        link = links.get(rel)
        if link is not None and _linked(link, dest):
            continue
        fd = os.open(dest, _NEW, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)


def _digested(
    files: dict[str, bytes], keys: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """The site's digest (of each file's path and sha256), each file's sha256, and what the
    cache remembers of the site: each keyed page's key and sha256."""
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}
    digest = hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in hashes.items()).encode()).hexdigest()
    return digest, hashes, {p: [k, hashes[p]] for p, k in sorted(keys.items())}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _holds(directory: Path, hashes: dict[str, str]) -> bool:
    """Does `directory` hold exactly the files of these sha256 (a site written before, not one
    tampered with: a link or a FIFO in it is neither followed nor waited on)?"""
    found = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if not p.is_dir()}
    if found != set(hashes):
        return False
    try:
        return all(
            hashlib.sha256(read_regular(directory / rel, "site page", PAGE_BYTES)).hexdigest() == h
            for rel, h in hashes.items()
        )
    except (OSError, BadInput):
        return False


def _name(sites: Path, hashes: dict[str, str], digest: str, current: str) -> tuple[str, bool]:
    """The digest names the site. A directory of that name is reused when it holds exactly
    the site's files (True: nothing to write), replaced when it is not the current site, and otherwise
    (the current site, tampered with) left to its readers while the site takes the next name."""
    for name in (digest[:32], *(f"{digest[:32]}-{i}" for i in range(1, 100))):
        path = sites / name
        if not path.exists() and not path.is_symlink():
            return name, False
        if path.is_dir() and not path.is_symlink() and _holds(path, hashes):
            return name, True
        if name != current:
            return name, False
    raise BadInput(f"{sites}: a hundred sites of the same digest; remove the directory")


def _sites(repo: Path) -> Path:
    """`REPO/.sites`, made if missing; BadInput when it or the site link is not what pkgrepo makes."""
    link = repo / LINK
    if link.exists() and not link.is_symlink():
        raise BadInput(f"{link}: exists and is not the site link pkgrepo writes; move it away")
    sites = repo / SITES
    if sites.is_symlink() or (sites.exists() and not sites.is_dir()):
        raise BadInput(f"{sites}: is not a directory pkgrepo made; remove it")
    sites.mkdir(exist_ok=True)
    return sites


def written(repo: Path, files: dict[str, bytes], links: dict[str, tuple[Path, int]]) -> str:
    """`files` written into a new temporary directory of `REPO/.sites`; its name."""
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=_sites(repo))
    _write_tree(tmp, files, links)
    return os.path.basename(tmp)


@dataclass
class Rendered:
    """A site rendered from a verified view: its files, what the cache records of them, its digest."""

    files: dict[str, bytes]  # emptied once written into `tmp`
    hashes: dict[str, str]  # each file's sha256
    record: dict[str, list[str]]  # each keyed page's key and sha256
    digest: str
    links: dict[str, tuple[Path, int]]  # pages taken from the previous site: hard-linked
    packages: int
    tmp: str | None = None  # the directory of `REPO/.sites` it is written in, if it is


def render_site(
    repo: Path,
    verified: Verified,
    advisories: list[Advisory],
    statements: list[Statement],
    cache: Path,
    heads: Heads | None,
) -> Rendered:
    """The site of `verified` (`cache`: the user's `web` cache; `heads`: package heads a
    publish read, by the sha256 of their bytes)."""
    catalogue = gather(verified, advisories, statements, cache, heads)
    previous = _previous(repo, cache)
    files, keys = render(catalogue, verified, previous.reuse)
    digest, hashes, record = _digested(files, keys)
    return Rendered(files, hashes, record, digest, previous.links, len(catalogue.packages))


def _install(repo: Path, rendered: Rendered) -> str:
    """Make the rendered site the served one (written here, or taken from its `tmp`); the
    name of its directory."""
    link = repo / LINK
    sites = _sites(repo)
    previous = os.readlink(link) if link.is_symlink() else ""
    current = os.path.basename(previous) if previous.startswith(f"{SITES}/") else ""
    name, held = _name(sites, rendered.hashes, rendered.digest, current)
    final = sites / name
    if not held:
        if final.exists() or final.is_symlink():
            _remove(final)  # not the current site (checked above): nobody is reading it
        tmp = rendered.tmp or written(repo, rendered.files, rendered.links)
        os.rename(sites / tmp, final)
    for stale in repo.glob(f".{LINK}.tmp*"):  # left by a run killed between link and rename
        stale.unlink(missing_ok=True)
    new_link = repo / f".{LINK}.tmp{os.getpid()}"
    new_link.symlink_to(f"{SITES}/{name}")
    os.replace(new_link, link)  # the commit: readers see the new site from here on
    for entry in sites.iterdir():  # older sites, leftovers of killed runs, an unused `tmp`
        if entry.name not in (name, current):
            _remove(entry)
    return name


def load_inputs(
    advisories: Path, vex: Path, cache: Path | None = None
) -> tuple[list[Advisory], list[Statement]]:
    """The advisories and VEX statements the site matches packages against (checked up front;
    `cache`: where VEX documents checked before are remembered, default `$PKGREPO_CACHE/web`)."""
    from pkgrepo.paths import default_cache

    return load_advisories(advisories), load_vex_cached(vex, (cache or default_cache() / "web") / "vex")


def generate(
    repo: Path,
    advisories: list[Advisory],
    statements: list[Statement],
    cache: Path | None = None,
    vouched: Vouched | None = None,
    ahead: Ahead | None = None,
) -> Site:
    """Verify the repository at `repo`, render its catalogue and make it the served site.
    `cache`: where what was learnt of packages and the page records are kept (default
    `$PKGREPO_CACHE/web`);
    `vouched`: what the publish just before read and signed (`PublishReport.vouched`), used
    where the repository's files are still those bytes; `ahead`: the site rendered while that
    publish signed, taken when it was rendered from the view verified here."""
    from pkgrepo.paths import default_cache
    from pkgrepo.repo.repository import Repository

    if not (repo / "metadata" / "1.root.json").is_file():
        raise BadInput(
            f"{repo}: not a repository (no metadata/1.root.json); create it with `pkgrepo repo init`"
        )
    with Repository.at(repo).lock():
        cache = cache or default_cache() / "web"
        verified = verify(repo, cache / "bins.json", vouched)
        rendered = ahead.take(verified) if ahead is not None else None
        if rendered is None:
            heads = vouched.heads if vouched is not None else None
            rendered = render_site(repo, verified, advisories, statements, cache, heads)
        name = _install(repo, rendered)
        _remember(cache, name, rendered.record)
        for old in OBSOLETE:  # thousands of files no version reads any more; a link is only unlinked
            with contextlib.suppress(OSError):
                _remove(cache / old)
    pages = sum(p.endswith(".html") for p in rendered.hashes)
    return Site(repo / LINK, rendered.digest, pages, rendered.packages, len(rendered.links))
