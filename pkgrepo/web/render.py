"""The catalogue as pages: Jinja2 templates with autoescape on, so every piece of untrusted
text (names, descriptions, licences, advisory text, file names) is escaped as it is written.

URLs from metadata (homepage, source URIs) become links only when they are http(s); any
other scheme (`javascript:`, `data:`) is shown as text. Pages link to each other and to the
repository's targets by relative URLs, so the site works under any prefix and from any
static server. The output is a dict of relative path -> bytes: no clock, no host name, sorted
input, so the same repository renders to the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2

from pkgrepo.web.catalogue import Catalogue, slug
from pkgrepo.web.verified import Verified

STATIC = ("style.css", "search.js")


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def link(url: str | None) -> str | None:
    """`url` when a browser may follow it from this page (http or https), else None."""
    if not url:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def date(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "unknown"


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pkgrepo.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates are compiled once per process, never checked for changes
    )
    env.filters.update(size=size, link=link, date=date, slug=slug)
    return env


@functools.cache
def _code() -> bytes:
    """What turns page values into bytes besides the values: the templates and this module."""
    h = hashlib.sha256()
    here = resources.files("pkgrepo.web")
    for name in sorted(p.name for p in (here / "templates").iterdir()):
        h.update(name.encode() + b"\0" + (here / "templates" / name).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.digest()


Reuse = Callable[[str, str], bytes | None]


def render(
    cat: Catalogue, verified: Verified, reuse: Reuse | None = None
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every file of the site, by path relative to the site's directory, and each page's key.

    A page's key is a digest of everything its bytes depend on: the templates and this
    module, and the page's values, with a package's file list stood for by the signed sha256
    of the package it was read from, and each linked target by its signed sha256. When
    `reuse(path, key)` returns bytes (a page of an earlier site made from the same key), they
    are used instead of rendering: the same bytes a full render gives."""
    env = _env()

    def target(path: str) -> str:
        return verified.target_path(path)

    def signed(paths: list[str]) -> list[tuple[str, str]]:
        return [(t, verified.targets[t].hashes["sha256"]) for t in paths]

    names = {p.name for p in cat.packages}
    # an advisory's page by its id or any alias (a patch names the CVE a Debian advisory aliases)
    pages = {n: a.slug for a in reversed(cat.advisories) for n in sorted(a.advisory.names())}
    pages.update((a.advisory.id, a.slug) for a in cat.advisories)
    common = {
        "target": target,
        "timestamp_version": verified.timestamp_version,
        "names": names,
        "advisory_page": pages.get,
    }
    out: dict[str, bytes] = {}
    keys: dict[str, str] = {}

    def page(path: str, template: str, inputs: object, **values: object) -> None:
        """Render `template` at `path`, or reuse it when `inputs` (what it depends on, None:
        everything) are those of a page made before."""
        data = None
        if inputs is not None:
            keys[path] = hashlib.sha256(_code() + repr((path, template, inputs)).encode()).hexdigest()
            data = reuse(path, keys[path]) if reuse is not None else None
        if data is None:
            up = "../" * path.count("/")
            data = env.get_template(template).render(**common, up=up, top=up + "../", **values).encode()
        out[path] = data

    page("index.html", "index.html", None, cat=cat)  # shows every package: rendered each time
    for pkg in cat.packages:
        # v.files is read from the package whose sha256 v.entry holds: that stands for it
        versions = [
            (
                v.entry,
                signed([v.entry.path, *sorted(v.evidence.values())]),
                v.evidence,
                v.provenance,
                v.depends,
                v.findings,
                [(f.advisory, pages.get(f.advisory)) for f in v.findings],
                [(f, pages.get(f)) for f in v.fixes],
            )
            for v in pkg.versions
        ]
        page(f"p/{pkg.name}.html", "package.html", (pkg.name, pkg.required_by, versions), pkg=pkg)
    for adv in cat.advisories:
        page(f"a/{adv.slug}.html", "advisory.html", adv, page_=adv)
    for img in cat.images:
        page(
            f"i/{slug(img.name)}.html",
            "image.html",
            (img, signed([img.target]), sorted(names), [pages.get(f.advisory) for f in img.findings]),
            img=img,
        )
    for name in STATIC:
        out[name] = (resources.files("pkgrepo.web") / "templates" / name).read_bytes()
    return dict(sorted(out.items())), keys
