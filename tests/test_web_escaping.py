"""Escaping is the web catalogue's trust boundary: every string a page shows from a package,
an advisory, a VEX statement, a provenance or an image record is untrusted.

A catalogue is built by hand (no repository: the records `gather` makes, with values no
repository would accept) in which every such string field holds its own hostile marker,
`<x y="fNNN">'&`; the site rendered from it must show each marker as text, escaped whole,
never as markup or half escaped, and link only to relative or http(s) URLs."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tuf.api.metadata import TargetFile

from pkgrepo.attest.advisories import Advisory, Affected, Range
from pkgrepo.attest.scan import Finding
from pkgrepo.package.meta import FileEntry, PackageInfo
from pkgrepo.repo.index import IndexEntry
from pkgrepo.web.catalogue import (
    AdvisoryPage,
    Catalogue,
    Dependency,
    ImagePage,
    Package,
    Patch,
    Provenanced,
    Version,
)
from pkgrepo.web.matching import Status
from pkgrepo.web.render import render
from pkgrepo.web.verified import Verified

FIELDS: list[str] = []  # what each marker stands for, by its number
HIDDEN: set[int] = set()  # the markers of fields no page shows


def hostile(field: str, shown: bool = True) -> str:
    """The marker of `field`: every character HTML gives a meaning to, around its number."""
    FIELDS.append(field)
    if not shown:
        HIDDEN.add(len(FIELDS) - 1)
    return f'<x y="f{len(FIELDS) - 1:03d}">\'&'


# every way `hostile(...)` may be written as text: the characters escaped, any entity spelling
ESCAPED = re.compile(
    r"&lt;x[ _]y=(?:&#34;|&quot;|&#x22;)(f\d{3})(?:&#34;|&quot;|&#x22;)&gt;(?:&#39;|&#x27;)&amp;"
)
SLUGGED = re.compile(r"_x_y__(f\d{3})____")  # `slug` of a marker: a page's file name or anchor
NUMBER = re.compile(r"(?<![0-9A-Za-z])f\d{3}(?!\d)")
SCRIPT_NAME = "javascript:alert(1)"  # a package name that would read as a URL scheme in a link


def version(
    name: str,
    homepage: str,
    sha: str,
    targets: dict[str, TargetFile],
    latest: bool,
    advisory: tuple[str, str],
) -> Version:
    """A version of package `name`; the latest one's description and file list are shown.
    `advisory`: the id and an alias of an advisory that has a page (linked where named)."""
    path = f"packages/{hostile('entry path')}.pkg.tar.zst"
    evidence = {
        "spdx": f"{path}.{hostile('SPDX target')}",
        "cdx": f"{path}.{hostile('CycloneDX target')}",
        "provenance": f"{path}.{hostile('provenance target')}",
    }
    for target in (path, *evidence.values()):
        targets[target] = TargetFile(1, {"sha256": hostile("a target's signed sha256")}, target)
    info = PackageInfo(
        name=name,
        version=hostile("version"),
        origin=hostile("origin"),
        epoch=1,
        arch=hostile("arch"),
        description=hostile("description", shown=latest),
        license=hostile("license"),
        homepage=homepage,
        depends=[hostile("depends", shown=False)],  # shown as the Dependency's text
        provides=[hostile("provides"), f"so:{hostile('provides so:')}"],
        installed_size=5000,
        build_date=1_700_000_000,
    )
    files = [
        FileEntry(hostile("file path", latest), "file", 0o644, 3_000_000),
        FileEntry(hostile("directory path", latest), "dir", 0o755),
        FileEntry(
            hostile("symlink path", latest), "symlink", 0o777, target=hostile("symlink target", latest)
        ),
        FileEntry(
            hostile("hard link path", latest), "hardlink", 0o644, target=hostile("hard link target", latest)
        ),
        FileEntry(hostile("file path holding a NUL", latest) + "\0", "file", 0o644, 1),  # no tar holds one
    ]
    prov = Provenanced(
        hostile("provenance state"),
        True,
        hostile("builder"),
        hostile("recipe"),
        (
            (hostile("source uri"), hostile("source sha256")),
            (f"https://example.invalid/{hostile('source https uri')}", hostile("source sha256 2")),
            (f"javascript:{hostile('source javascript uri')}", hostile("source sha256 3")),
        ),
        (
            Patch(hostile("patch file"), hostile("patch sha256"), (hostile("patch fixes"), advisory[1])),
            Patch(hostile("patch file 2"), None, ()),
        ),
    )
    return Version(
        IndexEntry(info, path, sha, 12345),
        (lambda: files) if latest else list,
        evidence,
        prov,
        [
            Dependency(hostile("dependency text"), (SCRIPT_NAME, hostile("provider name"), "//elsewhere")),
            Dependency(hostile("unmet dependency text"), ()),
        ],
        [
            finding("package finding"),
            finding("package finding, suppressed", "not_affected"),
            finding("finding of an advisory with a page", advisory=advisory[0]),
        ],
    )


def finding(what: str, status: str | None = None, advisory: str | None = None) -> Finding:
    return Finding(
        advisory or hostile(f"{what}: advisory"),
        hostile(f"{what}: severity"),
        hostile(f"{what}: package"),
        hostile(f"{what}: version"),
        hostile(f"{what}: fixed in"),
        status or hostile(f"{what}: status"),
        hostile(f"{what}: note"),
        None,
    )


def profile(which: str) -> dict:
    return {
        "digest": hostile(f"{which} digest"),
        "size": 2_000_000,
        "uncompressed": 7_000_000,
        "layers": [
            {
                "digest": hostile(f"{which} layer digest", shown=False),
                "size": 100,
                "uncompressed": 200,
                "title": hostile(f"{which} layer title"),
                "packages": [],
            },
            {
                "digest": "sha256:0",
                "size": 1,
                "uncompressed": 2,
                "title": "",
                "packages": [[hostile(f"{which} layer package"), hostile(f"{which} layer version")]],
            },
        ],
    }


def catalogue() -> tuple[Catalogue, Verified]:
    FIELDS.clear()
    HIDDEN.clear()
    targets: dict[str, TargetFile] = {}
    advisory = hostile("advisory id"), hostile("advisory alias")
    name = hostile("package name")
    packages = [
        Package(
            name,
            [
                version(
                    name, hostile("homepage (not a URL)"), hostile("entry sha256"), targets, True, advisory
                ),
                version(
                    name,
                    f"https://example.invalid/{hostile('homepage https')}",
                    hostile("older entry sha256"),
                    targets,
                    False,
                    advisory,
                ),
            ],
            [hostile("required by"), SCRIPT_NAME],
        ),
    ]
    adv = Advisory(
        advisory[0],
        hostile("advisory summary"),
        hostile("advisory severity"),
        (advisory[1], "ADV-1"),
        (
            Affected(
                hostile("affected package"),
                (
                    Range(hostile("range introduced"), hostile("range fixed")),
                    Range(hostile("range introduced 2"), None, hostile("range last affected")),
                ),
                (hostile("affected version"),),
                hostile("affected purl", shown=False),
            ),
        ),
        Path(hostile("advisory file", shown=False)),
    )
    statuses = [
        Status(
            hostile("status package"), hostile("status version"), hostile("status"), hostile("status note")
        )
    ]
    advisories = [AdvisoryPage(adv, hostile("advisory page's file name"), statuses)]
    image_target = f"images/{hostile('image target')}.json"
    targets[image_target] = TargetFile(1, {"sha256": hostile("image target sha256")}, image_target)
    record = {
        "name": hostile("record name", shown=False),
        "profiles": {"prod": profile("prod"), "dev": profile("dev")},
    }
    images = [
        ImagePage(
            hostile("image name"),
            record,
            image_target,
            [finding("image finding")],
            [[hostile("added package"), hostile("added version")], [name, hostile("added version 2")]],
            hostile("Dockerfile"),
        )
    ]
    return Catalogue(packages, advisories, images, {}), Verified(Path("/nonexistent"), targets, [], 7)


class Markup(HTMLParser):
    """The tags, attributes and links of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attributes: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "src", "action", "formaction"):
                self.links.append(value or "")


@pytest.fixture(scope="module")
def site() -> dict[str, str]:
    cat, verified = catalogue()
    files, _ = render(cat, verified)
    return {path: data.decode() for path, data in files.items() if path.endswith(".html")}


def test_every_untrusted_string_is_shown_escaped_whole(site: dict[str, str]):
    shown: set[str] = set()
    for path, page in sorted(site.items()):
        assert "<x " not in page and ' y="f' not in page, f"{path}: a marker written as markup"
        numbers = NUMBER.findall(page)
        whole = ESCAPED.findall(page) + SLUGGED.findall(page)
        # every occurrence of a marker's number is inside the marker escaped whole (or slugged)
        wrong = Counter(numbers) - Counter(whole)
        assert not wrong, f"{path}: written raw or half escaped: " + ", ".join(
            FIELDS[int(n[1:])] for n in sorted(wrong)
        )
        shown.update(ESCAPED.findall(page))
    missing = sorted(set(range(len(FIELDS))) - HIDDEN - {int(n[1:]) for n in shown})
    assert not missing, "never shown: " + ", ".join(FIELDS[i] for i in missing)


def test_pages_hold_only_pkgrepos_markup_and_links(site: dict[str, str]):
    tags = {"a", "article", "body", "br", "code", "dd", "details", "dl", "dt", "footer", "h1", "h2", "h3"}
    tags |= {"head", "header", "html", "input", "label", "li", "link", "main", "meta", "nav", "output", "p"}
    tags |= {"pre", "script", "section", "span", "strong", "summary", "table", "tbody", "td", "th", "thead"}
    tags |= {"title", "tr", "ul"}
    attributes = {"aria-label", "aria-labelledby", "aria-live", "autocomplete", "charset", "class", "content"}
    attributes |= {"defer", "for", "hidden", "href", "http-equiv", "id", "lang", "name", "placeholder"}
    attributes |= {"rel", "scope", "src", "type"}
    links = 0
    for path, page in sorted(site.items()):
        parsed = Markup()
        parsed.feed(page)
        parsed.close()
        assert set(parsed.tags) <= tags, f"{path}: tags {set(parsed.tags) - tags}"
        assert parsed.attributes <= attributes, f"{path}: attributes {parsed.attributes - attributes}"
        assert parsed.tags["script"] == (path == "index.html"), f"{path}: a script element"
        for url in parsed.links:
            scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url)
            if scheme:
                assert url.startswith(("http://", "https://")), f"{path}: links to {url}"
            else:
                assert not url.startswith(("//", "\\", "/\\")), f"{path}: links to another host: {url}"
            links += 1
    assert links > 50
    package = next(page for path, page in site.items() if path.startswith("p/"))
    assert package.count('href="./javascript:alert(1).html"') == 3  # required by, and a provider of each


def test_the_same_catalogue_renders_to_the_same_bytes():
    runs = [render(*catalogue()) for _ in range(2)]
    assert runs[0] == runs[1]
    files, keys = runs[0]
    assert sorted(keys) == sorted(p for p in files if p.startswith(("p/", "f/", "a/", "i/")))
