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
import urllib.parse
from datetime import UTC, datetime
from importlib import resources

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
    )
    env.filters.update(size=size, link=link, date=date, slug=slug)
    return env


def render(cat: Catalogue, verified: Verified) -> dict[str, bytes]:
    """Every file of the site, by path relative to the site's directory."""
    env = _env()

    def target(path: str) -> str:
        return verified.target_path(path)

    names = {p.name for p in cat.packages}
    common = {"target": target, "timestamp_version": verified.timestamp_version, "names": names}
    out: dict[str, bytes] = {}

    def page(path: str, template: str, **values: object) -> None:
        up = "../" * path.count("/")
        html = env.get_template(template).render(**common, up=up, top=up + "../", **values)
        out[path] = html.encode()

    page("index.html", "index.html", cat=cat)
    for pkg in cat.packages:
        page(f"p/{pkg.name}.html", "package.html", pkg=pkg, cat=cat)
    for adv in cat.advisories:
        page(f"a/{adv.slug}.html", "advisory.html", page_=adv)
    for img in cat.images:
        page(f"i/{slug(img.name)}.html", "image.html", img=img)
    for name in STATIC:
        out[name] = (resources.files("pkgrepo.web") / "templates" / name).read_bytes()
    return dict(sorted(out.items()))
