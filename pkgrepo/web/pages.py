"""The catalogue's pages as HTML, written by plain Python: no template engine.

The site was Jinja2 templates with autoescape. Rendering the main job's repository (882
files: package pages with 18,177 file rows in all, 797 advisory pages) took 0.42 s, nearly all
of it the engine's work per value (a context per page, blocks, macros called through its
runtime, an attribute lookup and a `Markup` object for each value), where issue 18's
benchmark leaves the render phase 0.06 s (the whole generation under a tenth of the
publish). Joining strings takes a sixth of that; only ASCII is written outside values
(`&rarr;`, not the arrow), which keeps the strings compact.

Escaping is the trust boundary: every value that comes from a package, an advisory, a VEX
statement, a provenance or an image record is untrusted and goes through `e` (or
`escaped`, the same for many values at once) where it is written, text or attribute value
alike. Written without it: pkgrepo's own markup, lengths, and `size` and `date` of numbers
(digits, a unit, a date). URLs become links only when they are http(s) (`link`).
`tests/test_web_escaping.py` fills every field of a catalogue with markup and fails on any
page that shows one raw or half escaped.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pkgrepo.attest.scan import Finding
from pkgrepo.web.catalogue import AdvisoryPage, Catalogue, ImagePage, Package, Version, slug
from pkgrepo.web.matching import Status


def e(value: object) -> str:
    """`value` as HTML text or a quoted attribute's value."""
    s = str(value)
    if "&" in s or "<" in s or ">" in s or '"' in s or "'" in s:  # most values hold none
        return (
            s.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&#34;")
            .replace("'", "&#39;")
        )
    return s


def escaped(values: list[Any]) -> list[str]:
    """`e` of each of `values`, in one pass over their text: a page's thousands of short
    values cost one escape, not thousands of calls."""
    texts = list(map(str, values))
    text = "\0".join(texts)
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        out = e(text).split("\0")
        return out if len(out) == len(texts) else [e(x) for x in texts]  # a value held a NUL
    return texts


def size(n: int) -> str:
    """A byte count as people read it: digits and a unit (nothing to escape)."""
    if n < 1024:
        return f"{n} B"
    if n < 1048576:
        return f"{n / 1024:.1f} KiB"
    if n < 1073741824:
        return f"{n / 1048576:.1f} MiB"
    return f"{n / 1073741824:.1f} GiB"


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


@dataclass(frozen=True)
class Site:
    """What every page may link to: the repository's targets and the site's own pages."""

    target: Callable[[str], str]  # a signed target's path relative to the repository
    names: set[str]  # the packages that have a page
    advisory_page: Callable[[str], str | None]  # an advisory's slug by its id or any alias
    files_page: Callable[[str], str]  # the file-list page of a package by its target path


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)
FOOTER = "Generated from the repository's signed metadata; every link to a file points at a TUF target."
FINDINGS_HEAD = (
    '<table>\n<thead><tr><th scope="col">Advisory</th><th scope="col">Severity</th>'
    '<th scope="col">Package</th><th scope="col">Status</th><th scope="col">Note</th></tr></thead>\n<tbody>\n'
)


def _page(up: str, title: str, main: str, head: str = "") -> str:
    """A whole page: `title` and `main` are HTML already (escaped where they hold values)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{title} &middot; pkgrepo</title>\n"
        f'<link rel="stylesheet" href="{up}style.css">\n{head}</head>\n<body>\n<header class="site">\n'
        f'<a class="home" href="{up}index.html">pkgrepo</a>\n<nav aria-label="Sections">\n'
        f'<a href="{up}index.html#packages">Packages</a>\n'
        f'<a href="{up}index.html#images">Images</a>\n'
        f'<a href="{up}index.html#advisories">Advisories</a>\n'
        f"</nav>\n</header>\n<main>\n{main}</main>\n<footer>{FOOTER}</footer>\n</body>\n</html>\n"
    )


@functools.lru_cache(maxsize=64)  # a few statuses, in thousands of rows
def _status(s: str) -> str:
    return f'<span class="status {e(s.replace(" ", "_"))}">{e(s.replace("_", " "))}</span>'


def _sibling(name: str) -> str:
    """A link from a package's page to the page of package `name`: `NAME.html`, or
    `./NAME.html` when the name (never a valid one) could read as a scheme or a host."""
    here = "" if name[:1].isalnum() and ":" not in name else "./"
    return f'<a href="{here}{e(name)}.html">{e(name)}</a>'


def _url(u: str) -> str:
    href = link(u)
    return f'<a href="{e(href)}">{e(u)}</a>' if href else f"<code>{e(u)}</code>"


def _advisory_link(site: Site, ident: str, up: str) -> str:
    page = site.advisory_page(ident)
    return f'<a href="{up}a/{e(page)}.html">{e(ident)}</a>' if page else e(ident)


def _findings(site: Site, findings: list[Finding], up: str) -> str:
    if not findings:
        return '<p class="ok">No known advisory applies.</p>\n'
    rows = [FINDINGS_HEAD]
    for f in findings:
        fixed = f" (fixed in {e(f.fixed)})" if f.fixed else ""
        rows.append(
            f"<tr><td>{_advisory_link(site, f.advisory, up)}</td>"
            f'<td><span class="sev {e(f.severity)}">{e(f.severity)}</span></td>'
            f'<td><a href="{up}p/{e(f.package)}.html">{e(f.package)}</a> {e(f.version)}{fixed}</td>'
            f"<td>{_status(f.status)}</td><td>{e(f.note)}</td></tr>\n"
        )
    rows.append("</tbody>\n</table>\n")
    return "".join(rows)


def _unsuppressed(findings: Iterable[Finding]) -> int:
    return sum(1 for f in findings if not f.suppressed)


def index(cat: Catalogue, timestamp_version: int) -> str:
    out = [
        "<h1>Package catalogue</h1>\n",
        f'<p class="lead">{len(cat.packages)} packages, {len(cat.images)} images, '
        f"{len(cat.advisories)} advisories, all from the signed repository "
        f"(timestamp version {e(timestamp_version)}).</p>\n",
        '<section id="packages" aria-labelledby="packages-h">\n<h2 id="packages-h">Packages</h2>\n'
        '<p class="search" hidden><label for="q">Search names and descriptions</label> '
        '<input id="q" type="search" autocomplete="off" placeholder="e.g. zlib, compression"> '
        '<output id="count" for="q" aria-live="polite"></output></p>\n<ul class="packages" id="list">\n',
    ]
    for pkg in cat.packages:
        info = pkg.latest.entry.info
        affected = (
            ' <span class="status affected">affected</span>' if _unsuppressed(pkg.latest.findings) else ""
        )
        out.append(
            f'<li><a href="p/{e(pkg.name)}.html">{e(pkg.name)}</a> <span class="ver">{e(info.full_version)}</span>'
            f'{affected}<br><span class="desc">{e(info.description)}</span></li>\n'
        )
    out.append(
        '</ul>\n</section>\n<section id="images" aria-labelledby="images-h">\n<h2 id="images-h">Images</h2>\n'
    )
    if cat.images:
        out.append(
            '<table>\n<thead><tr><th scope="col">Image</th><th scope="col">Prod (pull)</th>'
            '<th scope="col">Dev (pull)</th><th scope="col">Findings</th></tr></thead>\n<tbody>\n'
        )
        for img in cat.images:
            profiles = img.record["profiles"]
            pulls = [size(profiles[p]["size"]) if profiles.get(p) else "&ndash;" for p in ("prod", "dev")]
            out.append(
                f'<tr><td><a href="i/{e(slug(img.name))}.html">{e(img.name)}</a></td>\n'
                f"<td>{pulls[0]}</td>\n<td>{pulls[1]}</td>\n<td>{_unsuppressed(img.findings)}</td></tr>\n"
            )
        out.append("</tbody>\n</table>\n")
    else:
        out.append(
            "<p>No image published yet (<code>pkgrepo repo web REPO --images DIR</code> "
            "signs image records in).</p>\n"
        )
    out.append(
        '</section>\n<section id="advisories" aria-labelledby="advisories-h">\n'
        '<h2 id="advisories-h">Advisories</h2>\n'
    )
    if cat.advisories:
        out.append("<ul>\n")
        for a in cat.advisories:
            adv, sev = a.advisory, e(a.advisory.severity)
            out.append(
                f'<li><a href="a/{e(a.slug)}.html">{e(adv.id)}</a> <span class="sev {sev}">{sev}</span> '
                f"{e(adv.summary)}</li>\n"
            )
        out.append("</ul>\n")
    else:
        out.append("<p>No advisory.</p>\n")
    out.append("</section>\n")
    return _page("", "Catalogue", "".join(out), '<script src="search.js" defer></script>')


def _files(v: Version) -> str:
    """The rows of a package's file list: most of the site (python3 alone has 9,000)."""
    files = v.files
    paths = escaped([f.path for f in files])
    rows = [
        f"<tr><td><code>/{path}{'/' if f.type == 'dir' else ''}{' &rarr; ' + e(f.target) if f.target else ''}</code></td>"
        f"<td>{size(f.size) if f.type == 'file' else ''}</td></tr>\n"
        for path, f in zip(paths, files, strict=True)
    ]
    return "".join(rows)


def files(site: Site, v: Version, up: str, top: str) -> str:
    """The file-list page of one package file (its own page, as Debian's are: it changes only
    with the package, where the package's page changes with what requires it)."""
    info = v.entry.info
    title = f"{e(info.name)} {e(info.full_version)}"
    listed = v.files
    main = (
        f"<h1>{title}: files</h1>\n"
        f'<p class="lead">{len(listed)} files of <a href="{up}p/{e(info.name)}.html#v-{e(slug(info.full_version))}">'
        f'{title}</a>, as <a href="{top}{e(site.target(v.entry.path))}">{e(info.filename)}</a> holds them.</p>\n'
        '<table class="files">\n'
        '<thead><tr><th scope="col">Path</th><th scope="col">Size</th></tr></thead>\n<tbody>\n'
        f"{_files(v)}</tbody>\n</table>\n"
    )
    return _page(up, f"{title} files", main)


def _version(site: Site, pkg: Package, v: Version, first: bool, up: str, top: str) -> list[str]:
    info, prov = v.entry.info, v.provenance
    epoch = f" (epoch {e(info.epoch)})" if info.epoch else ""
    homepage = _url(info.homepage) if info.homepage else "none"
    out = [
        f'<article id="v-{e(slug(info.full_version))}">\n<h2>{e(info.name)} {e(info.full_version)}</h2>\n'
        '<dl class="facts">\n'
        f"<dt>Version</dt><dd>{e(info.version)}{epoch}</dd>\n"
        f"<dt>Release</dt><dd>{e(info.release)}</dd>\n"
        f"<dt>Architecture</dt><dd>{e(info.arch)}</dd>\n"
        f'<dt>Size</dt><dd>{size(v.entry.size)} <span class="muted">({e(v.entry.size)} bytes)</span></dd>\n'
        f"<dt>Installed size</dt><dd>{size(info.installed_size)}</dd>\n"
        f"<dt>License</dt><dd>{e(info.license or 'not declared')}</dd>\n"
        f"<dt>Homepage</dt><dd>{homepage}</dd>\n"
        f"<dt>Recipe</dt><dd>{e(info.origin)}</dd>\n"
        f"<dt>Build date</dt><dd>{date(info.build_date)}</dd>\n"
        f'<dt>sha256</dt><dd><code class="hash">{e(v.entry.sha256)}</code></dd>\n</dl>\n'
        '<h3>Downloads and evidence</h3>\n<ul class="evidence">\n'
        f'<li><a href="{top}{e(site.target(v.entry.path))}">{e(info.filename)}</a></li>\n'
    ]
    for kind, text in (
        ("spdx", "SBOM (SPDX 2.3)"),
        ("cdx", "SBOM (CycloneDX 1.6)"),
        ("provenance", "Provenance (SLSA v1, DSSE)"),
    ):
        if v.evidence.get(kind):
            out.append(
                f'<li><a href="{top}{e(site.target(v.evidence[kind]))}" type="application/json">{text}</a></li>'
            )
    builder = f"; builder <code>{e(prov.builder)}</code>" if prov.builder else ""
    recipe = f"; recipe <code>{e(prov.recipe)}</code>" if prov.recipe else ""
    out.append(
        f'</ul>\n<p class="provenance {"good" if prov.ok else "bad"}"><strong>Provenance:</strong> '
        f"{e(prov.state)}{builder}{recipe}</p>\n<h3>Sources</h3>\n"
    )
    if prov.sources:
        out.append('<ul class="sources">\n')
        out += [
            f'<li>{_url(uri)}<br><span class="muted">sha256</span> <code class="hash">{e(sha)}</code></li>\n'
            for uri, sha in prov.sources
        ]
        out.append("</ul>\n")
    else:
        out.append(f"<p>None recorded{'' if prov.ok else ' (no verified provenance)'}.</p>\n")
    out.append("<h3>Patches applied</h3>\n")
    if prov.patches:
        out.append("<ul>\n")
        for p in prov.patches:
            fixes = ", ".join(_advisory_link(site, f, up) for f in p.fixes)
            fixes = f" fixes {fixes}" if p.fixes else ""
            sha = (
                f'<br><span class="muted">sha256</span> <code class="hash">{e(p.sha256)}</code>'
                if p.sha256
                else ""
            )
            out.append(f"<li><code>{e(p.file)}</code>{fixes}{sha}</li>\n")
        out.append("</ul>\n")
    else:
        out.append("<p>None.</p>\n")
    out.append("<h3>Depends on</h3>\n")
    if v.depends:
        out.append('<ul class="deps">\n')
        for d in v.depends:
            if d.providers:
                met = " &rarr; " + ", ".join(_sibling(n) for n in d.providers)
            else:
                met = ' <span class="status affected">not in this repository</span>'
            out.append(f"<li><code>{e(d.text)}</code>{met}</li>\n")
        out.append("</ul>\n")
    else:
        out.append("<p>Nothing.</p>\n")
    if first:
        out.append("<h3>Required by</h3>\n")
        if pkg.required_by:
            links = "".join(f"<li>{_sibling(n)}</li>" for n in pkg.required_by)
            out.append(f'<ul class="inline">\n{links}</ul>\n')
        else:
            out.append("<p>No package in this repository.</p>\n")
    out.append("<h3>Provides</h3>\n")
    if info.provides:
        provides = "".join(f"<li><code>{e(p)}</code></li>" for p in sorted(info.provides))
        out.append(f'<ul class="inline">\n{provides}</ul>\n')
    else:
        out.append("<p>Nothing beyond its name.</p>\n")
    out += [
        "<h3>Advisories</h3>\n",
        _findings(site, v.findings, up),
        f'\n<h3>Files</h3>\n<p><a href="{up}{e(site.files_page(v.entry.path))}">The list of files</a> '
        "it installs.</p>\n</article>\n",
    ]
    return out


def package(site: Site, pkg: Package, up: str, top: str) -> str:
    out = [f'<h1>{e(pkg.name)}</h1>\n<p class="lead">{e(pkg.latest.entry.info.description)}</p>\n']
    if len(pkg.versions) > 1:
        versions = ", ".join(
            f'<a href="#v-{e(slug(v.entry.info.full_version))}">{e(v.entry.info.full_version)}</a>'
            for v in pkg.versions
        )
        out.append(f'<nav aria-label="Versions"><p>Versions: {versions}</p></nav>\n')
    for i, v in enumerate(pkg.versions):
        out += _version(site, pkg, v, i == 0, up, top)
    return _page(up, e(pkg.name), "".join(out))


def _ranges(af: Any) -> str:
    parts = []
    for r in af.ranges:
        end = (
            f" until {e(r.fixed)}" if r.fixed else f" through {e(r.last_affected)}" if r.last_affected else ""
        )
        parts.append(f"from {e(r.introduced)}{end}")
    versions = f" {', '.join(e(x) for x in af.versions)}" if af.versions else ""
    return "; ".join(parts) + versions


def _statuses(statuses: list[Status], up: str) -> str:
    if not statuses:
        return "<p>No published package is named by this advisory.</p>\n"
    rows = [
        '<table>\n<thead><tr><th scope="col">Package</th><th scope="col">Version</th>'
        '<th scope="col">Status</th><th scope="col">Justification or note</th></tr></thead>\n<tbody>\n'
    ]
    values = escaped([x for s in statuses for x in (s.package, s.version, s.note)])
    rows += [
        f'<tr><td><a href="{up}p/{name}.html">{name}</a></td><td>{version}</td>'
        f"<td>{_status(s.status)}</td><td>{note}</td></tr>\n"
        for s, name, version, note in zip(statuses, values[::3], values[1::3], values[2::3], strict=True)
    ]
    rows.append("</tbody>\n</table>\n")
    return "".join(rows)


def advisory(page: AdvisoryPage, up: str) -> str:
    a = page.advisory
    sev = e(a.severity)
    out = [
        f'<h1>{e(a.id)}</h1>\n<p class="lead">{e(a.summary)}</p>\n<dl class="facts">\n'
        f'<dt>Severity</dt><dd><span class="sev {sev}">{sev}</span></dd>\n'
        f"<dt>Aliases</dt><dd>{', '.join(e(x) for x in a.aliases) or 'none'}</dd>\n</dl>\n"
        '<h2>Affected versions</h2>\n<table>\n<thead><tr><th scope="col">Package or recipe</th>'
        '<th scope="col">Ranges</th><th scope="col">Fixed in</th></tr></thead>\n<tbody>\n'
    ]
    out += [
        f"<tr><td>{e(af.package)}</td><td>{_ranges(af)}</td><td>{e(af.fixed or 'not fixed')}</td></tr>\n"
        for af in a.affected
    ]
    out += ["</tbody>\n</table>\n<h2>Published packages</h2>\n", _statuses(page.statuses, up)]
    return _page(up, e(a.id), "".join(out))


def _layers(site: Site, layers: list[dict[str, Any]], up: str) -> str:
    rows = []
    for i, layer in enumerate(layers, 1):
        if layer["packages"]:
            shown = ", ".join(f"{_package_link(site, n, up)} {e(ver)}" for n, ver in layer["packages"])
        else:
            shown = e(layer["title"])
        rows.append(
            f"<tr><td>{i}</td><td>{shown}</td><td>{size(layer['size'])}</td>"
            f"<td>{size(layer['uncompressed'])}</td></tr>\n"
        )
    return "".join(rows)


def _package_link(site: Site, name: str, up: str) -> str:
    return f'<a href="{up}p/{e(name)}.html">{e(name)}</a>' if name in site.names else e(name)


def image(site: Site, img: ImagePage, up: str, top: str) -> str:
    name = e(img.name)
    out = [
        f'<h1>{name} <span class="muted">image</span></h1>\n'
        f'<p class="lead">Record: <a href="{top}{e(site.target(img.target))}" type="application/json">'
        f"{e(img.target)}</a> (a signed target).</p>\n"
    ]
    profiles = img.record["profiles"]
    for profile in ("prod", "dev"):
        p = profiles.get(profile)
        if not p:
            continue
        out.append(
            f'<section aria-labelledby="{profile}-h">\n<h2 id="{profile}-h">{profile}</h2>\n<dl class="facts">\n'
            f'<dt>Digest</dt><dd><code class="hash">{e(p["digest"])}</code></dd>\n'
            f"<dt>Compressed (pull)</dt><dd>{size(p['size'])}</dd>\n"
            f"<dt>Uncompressed</dt><dd>{size(p['uncompressed'])}</dd>\n"
            f"<dt>Layers</dt><dd>{len(p['layers'])}</dd>\n</dl>\n"
            '<table>\n<thead><tr><th scope="col">#</th><th scope="col">Packages</th>'
            '<th scope="col">Compressed</th><th scope="col">Uncompressed</th></tr></thead>\n<tbody>\n'
            f"{_layers(site, p['layers'], up)}</tbody>\n</table>\n</section>\n"
        )
    if profiles.get("prod") and profiles.get("dev"):
        out.append("<h2>What dev adds to prod</h2>\n")
        if img.added:
            added = "".join(f"<li>{_package_link(site, n, up)} {e(ver)}</li>" for n, ver in img.added)
            out.append(f'<ul class="inline">\n{added}</ul>\n')
        else:
            out.append("<p>No package (dev adds only files prod minimization drops).</p>\n")
    out += ["<h2>Scan</h2>\n", _findings(site, img.findings, up), "\n<h2>Dockerfile</h2>\n"]
    if img.dockerfile:
        out.append(f"<pre><code>{e(img.dockerfile)}</code></pre>\n")
    else:
        out.append("<p>No prod image recorded.</p>\n")
    return _page(up, f"{name} image", "".join(out))
