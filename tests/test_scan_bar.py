"""The scan bar (issue 15, item 5): `pkgrepo scan --fail-on low` over every example image, prod and
dev, built from real packages; and the reasons of the VEX statements in repo-data/vex/ that are
not openssl's (tests/test_openssl_vex.py), each checked in the built package."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from elftools.elf.elffile import ELFFile

from pkgrepo.cli.advisories import WHEEL_SOURCES
from pkgrepo.recipe.load import load_requested
from tests.helpers.cli import RECIPES, ROOT, build_cached, run_cli

IMAGES = sorted((ROOT / "repo-data" / "images").glob("*.yaml"))

# Findings the bar still fails on, by profile, each with why it is open (docs/evidence.md, "The
# bar"). The test fails when one of these goes away (remove it here) as much as when a new one appears.
KNOWN_OPEN: dict[tuple[str, str], str] = {}
# Packages the feed has no data for: no suite of Debian's archive serves these sources' debian/ here,
# and pkgrepo has no upstream outside this repository (docs/evidence.md).
KNOWN_NO_DATA = {"pkgrepo", "py3-click", "py3-securesystemslib", "py3-tuf", "py3-zstandard", "libpcre2-8"}


def payload(pkg: Path) -> dict[str, bytes]:
    with pkg.open("rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_wheel_sources_name_recipes_built_from_wheels():
    """The Debian names in WHEEL_SOURCES are for recipes that have no `sources[].debian` of their own,
    and the committed feed covers every upstream project whose Debian changelog the archive serves."""
    recipes = load_requested(RECIPES, [])
    for name in WHEEL_SOURCES:
        recipe = recipes[name].recipe
        assert recipe.upstream_purl and recipe.upstream_purl.startswith("pkg:pypi/"), name
        assert all(s.debian is None for s in recipe.sources), name
    feed = json.loads((ROOT / "repo-data" / "advisories" / "feed.json").read_text())
    assert {"pkg:pypi/urllib3", "pkg:pypi/libarchive-c"} <= set(feed["projects"])
    assert "python-urllib3" in {i["source"] for i in feed["inputs"]}


@pytest.fixture(scope="module")
def libarchive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("libarchive")
    proc = build_cached(out, "libarchive")
    assert proc.returncode == 0, proc.stderr
    return out


def test_libarchive_ships_no_bsdunzip(libarchive: Path):
    """The reason of repo-data/vex/libarchive-bsdunzip.json: CVE-2025-1632 is in bsdunzip, which
    3.6.2 does not have, and the recipe builds no program at all."""
    pkgs = sorted(libarchive.glob("libarchive-*3.6.2-r*.pkg.tar.zst"))
    assert {p.name.split("-3.6.2")[0] for p in pkgs} == {"libarchive", "libarchive-dev"}
    for pkg in pkgs:
        files = payload(pkg)
        assert not [f for f in files if "/bin/" in f or "unzip" in f], pkg.name
        assert not [data for data in files.values() if b"bsdunzip" in data], pkg.name
        if pkg.name.startswith("libarchive-3"):  # the search sees the library's strings
            assert any(b"archive_read_support_format_zip" in data for data in files.values())
        doc = json.loads(run_cli("scan", str(pkg), "--json", check=True).stdout)
        (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2025-1632"]
        assert f["status"] == "not_affected" and f["note"] == "vulnerable_code_not_present"


@pytest.mark.slow
def test_python3_uses_the_system_expat(example_packages: Path):
    """The reason of repo-data/vex/python3-system-expat.json: pyexpat links the expat package's
    libexpat.so.1 and defines no expat parser function itself (the bundled Modules/expat is not built)."""
    (pkg,) = example_packages.glob("python3-3.11.*.pkg.tar.zst")
    files = payload(pkg)
    (path,) = [p for p in files if "/lib-dynload/pyexpat." in p]
    elf = ELFFile(io.BytesIO(files[path]))
    needed = [
        t.needed for t in elf.get_section_by_name(".dynamic").iter_tags() if t.entry.d_tag == "DT_NEEDED"
    ]
    assert "libexpat.so.1" in needed, needed
    symbols = {s.name: s["st_shndx"] for s in elf.get_section_by_name(".dynsym").iter_symbols()}
    assert symbols.get("XML_ParserCreate_MM") == "SHN_UNDEF"  # imported from libexpat
    assert not [n for n, where in symbols.items() if n.startswith("XML_") and where != "SHN_UNDEF"]
    assert not [p for p in files if "libexpat" in p]
    doc = json.loads(run_cli("scan", str(pkg), "--json", check=True).stdout)
    (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2023-52425"]
    assert f["status"] == "not_affected" and f["note"] == "vulnerable_code_not_present"


def test_urllib3_fixed_statements_name_the_recipe_version_and_its_checks():
    """repo-data/vex/urllib3-2.8.0.json says `fixed` for the release the recipe builds, and each
    id has its check in the recipe's test (run in the built package; each fails on 2.2.3)."""
    recipe = (RECIPES / "py3-urllib3.yaml").read_text()
    package = load_requested(RECIPES, ["py3-urllib3"])["py3-urllib3"].recipe.package
    version = package.version
    doc = json.loads((ROOT / "repo-data" / "vex" / f"urllib3-{version}.json").read_text())
    for s in doc["statements"]:
        cve = s["vulnerability"]["name"]
        assert s["status"] == "fixed", s
        assert [p["@id"] for p in s["products"]] == [
            f"pkg:generic/pkgrepo/py3-urllib3@{version}-r{package.release}"
        ]
        assert f"def {cve.lower().replace('-', '_')}():" in recipe, cve
    assert {s["vulnerability"]["name"] for s in doc["statements"]} == {
        "CVE-2025-50181", "CVE-2025-66418", "CVE-2026-21441", "CVE-2026-44431",
    }  # fmt: skip


@pytest.mark.slow
def test_urllib3_emscripten_backend_is_never_loaded(example_packages: Path):
    """The reason of repo-data/vex/urllib3-emscripten.json: urllib3 loads its Emscripten backend
    only on sys.platform "emscripten", and the one Python here is CPython for x86_64-linux-musl."""
    (pkg,) = example_packages.glob("py3-urllib3-2.*.pkg.tar.zst")
    files = {p: data.decode() for p, data in payload(pkg).items() if p.endswith(".py")}
    (init,) = [p for p in files if p.endswith("/site-packages/urllib3/__init__.py")]
    guard = 'if sys.platform == "emscripten":\n    from .contrib.emscripten import inject_into_urllib3'
    assert guard in files[init]
    outside = {p: text for p, text in files.items() if "/urllib3/contrib/emscripten/" not in p}
    importers = [
        p for p, text in outside.items() if "contrib.emscripten" in text or "import emscripten" in text
    ]
    assert importers == [init], importers  # nothing outside the backend reaches it
    (python,) = example_packages.glob("python3-3.11.*.pkg.tar.zst")
    assert [p for p in payload(python) if p.endswith("/_sysconfigdata__linux_x86_64-linux-musl.py")]
    doc = json.loads(run_cli("scan", str(pkg), "--json", check=True).stdout)
    (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2025-50182"]
    assert f["status"] == "not_affected" and f["note"] == "vulnerable_code_not_in_execute_path"


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["prod", "dev"])
@pytest.mark.parametrize("spec", IMAGES, ids=[p.stem for p in IMAGES])
def test_example_image_passes_the_scan_bar(example_packages: Path, spec: Path, profile: str, tmp_path: Path):
    """`pkgrepo scan ROOT --provenance DIR --fail-on low --allow-unknown` on the image's root passes,
    but for the findings KNOWN_OPEN lists for the profile (each must still be there while its package
    is), and the packages the feed has no data for are exactly KNOWN_NO_DATA's."""
    root = tmp_path / "root"
    run_cli(
        "image", "build", str(spec), "--packages", str(example_packages), "--profile", profile,
        "--rootfs", str(root), check=True,
    )  # fmt: skip
    proc = run_cli(
        "scan",
        str(root),
        "--provenance",
        str(example_packages),
        "--fail-on",
        "low",
        "--allow-unknown",
        "--json",
    )
    doc = json.loads(proc.stdout)
    installed = {f["package"] for f in doc["findings"]} | set(doc["no_data"])
    open_ = {
        f"{f['advisory']} {f['package']}"
        for f in doc["findings"]
        if f["status"] not in ("fixed", "not_affected")
    }
    known = {k for k, p in KNOWN_OPEN if k.split()[1] in installed and p == profile}
    assert open_ == known, sorted(open_ ^ known)
    assert set(doc["no_data"]) == KNOWN_NO_DATA & installed, doc["no_data"]
    assert proc.returncode == (1 if open_ else 0), proc.stderr
