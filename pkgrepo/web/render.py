"""The catalogue as the site's files, each page with a key that lets a later site reuse it.

The pages themselves are written by `pages` (plain Python, every untrusted value escaped
where it is written; its docstring says why there is no template engine). Pages link to
each other and to the repository's targets by relative URLs, so the site works under any
prefix and from any static server. The output is a dict of relative path -> bytes: no
clock, no host name, sorted input, so the same repository renders to the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pkgrepo.web import pages
from pkgrepo.web.catalogue import Catalogue, slug
from pkgrepo.web.verified import Verified

STATIC = ("style.css", "search.js")


@functools.cache
def _code() -> bytes:
    """What turns page values into bytes besides the values: this module, `pages` and the
    static files."""
    h = hashlib.sha256()
    for module in (__file__, pages.__file__):
        h.update(Path(module).read_bytes())
    for name in STATIC:
        h.update(name.encode() + b"\0" + _static(name))
    return h.digest()


def _static(name: str) -> bytes:
    return (resources.files("pkgrepo.web") / "static" / name).read_bytes()


Reuse = Callable[[str, str], bytes | None]


def render(
    cat: Catalogue, verified: Verified, reuse: Reuse | None = None
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every file of the site, by path relative to the site's directory, and each page's key.

    A page's key is a digest of everything its bytes depend on: the code that writes it
    (`_code`), and the page's values, with a file list (a page of its own) stood for by the
    signed sha256 of the package it is read from, and each linked target by its signed sha256. When
    `reuse(path, key)` returns bytes (a page of an earlier site made from the same key), they
    are used instead of rendering: the same bytes a full render gives."""

    def signed(paths: list[str]) -> list[tuple[str, str]]:
        return [(t, verified.targets[t].hashes["sha256"]) for t in paths]

    names = {p.name for p in cat.packages}
    # an advisory's page by its id or any alias (a patch names the CVE a Debian advisory aliases)
    slugs = {n: a.slug for a in reversed(cat.advisories) for n in sorted(a.advisory.names())}
    slugs.update((a.advisory.id, a.slug) for a in cat.advisories)
    taken: set[str] = set()
    file_pages: dict[str, str] = {}  # target path -> its file-list page: f/FILENAME.html, unique
    for v in (v for p in cat.packages for v in p.versions):
        name = v.entry.info.filename
        while f"f/{name}.html" in taken:  # only a hostile index names a file twice
            name += "_"
        file_pages[v.entry.path] = f"f/{name}.html"
        taken.add(file_pages[v.entry.path])
    site = pages.Site(verified.target_path, names, slugs.get, file_pages.__getitem__)
    out: dict[str, bytes] = {}
    keys: dict[str, str] = {}
    code = hashlib.sha256(_code())

    def page(path: str, kind: str, inputs: object, write: Callable[[str, str], str]) -> None:
        """Write the page at `path` (`write(up, top)`: its HTML, given the relative URLs of the
        site's and the repository's top), or reuse it when `inputs` (what it depends on, None:
        everything) are those of a page made before."""
        data = None
        if inputs is not None:
            key = code.copy()
            key.update(repr((path, kind, inputs)).encode())
            keys[path] = key.hexdigest()
            data = reuse(path, keys[path]) if reuse is not None else None
        if data is None:
            up = "../" * path.count("/")
            data = write(up, up + "../").encode()
        out[path] = data

    # the index shows every package: written each time
    page("index.html", "index", None, lambda up, top: pages.index(cat, verified.timestamp_version))
    for pkg in cat.packages:
        for v in pkg.versions:  # the file list is read from the package of this sha256
            info = v.entry.info
            inputs = (v.entry.path, v.entry.sha256, info.name, info.full_version, info.filename)
            page(file_pages[v.entry.path], "files", inputs, functools.partial(pages.files, site, v))
        versions = [
            (
                v.entry,
                signed([v.entry.path, *sorted(v.evidence.values())]),
                v.evidence,
                v.provenance,
                v.depends,
                v.findings,
                [(f.advisory, slugs.get(f.advisory)) for f in v.findings],
                [(f, slugs.get(f)) for f in v.fixes],
                file_pages[v.entry.path],
            )
            for v in pkg.versions
        ]
        write = functools.partial(pages.package, site, pkg)
        page(f"p/{pkg.name}.html", "package", (pkg.name, pkg.required_by, versions), write)
    for adv in cat.advisories:
        page(f"a/{adv.slug}.html", "advisory", adv, lambda up, top, adv=adv: pages.advisory(adv, up))
    for img in cat.images:
        page(
            f"i/{slug(img.name)}.html",
            "image",
            (img, signed([img.target]), sorted(names), [slugs.get(f.advisory) for f in img.findings]),
            functools.partial(pages.image, site, img),
        )
    for name in STATIC:
        out[name] = _static(name)
    return dict(sorted(out.items())), keys
