"""The advisory feed: import from Debian's changelogs, upstream identity, no-data honesty, currency.

Real parts: the importer reads a copy of Debian's own expat changelogs (tests/fixtures/
debian-changelog), the committed feed is parsed whole, and `outdated` asks real apt about a
tiny deb-src repository served from a temporary directory with `file:`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pkgrepo.attest.advisories import load_feed
from pkgrepo.attest.cdx import cyclonedx_document
from pkgrepo.attest.component import Component, Subject
from tests.helpers.cli import ROOT, run_cli

FIXTURE = ROOT / "tests" / "fixtures" / "debian-changelog"
EXPAT = "pkg:github/libexpat/libexpat"


def _events(path: Path) -> list[dict]:
    rec = json.loads(path.read_text())
    (aff,) = rec["affected"]
    assert aff["package"]["purl"] == EXPAT and aff["package"]["ecosystem"] == "upstream"
    return aff["ranges"][0]["events"]


def test_import_debian_changelogs_into_upstream_ranges(tmp_path):
    out = tmp_path / "feed"
    run_cli("advisories", "import", "--from", "debian-changelog", str(FIXTURE), "--out", str(out), check=True)
    meta = json.loads((out / "feed.json").read_text())
    assert meta["name"] == "debian-changelog" and meta["projects"] == [EXPAT]
    assert {i["version"] for i in meta["inputs"]} == {"2.5.0-1+deb12u2", "2.8.3-1~deb13u1"}
    # Patched in bookworm on 2.5.0 and in unstable on 2.6.2: plain upstream is fixed only by 2.6.3.
    assert _events(out / "DEBIAN-CVE-2024-45490.json") == [{"introduced": "0"}, {"fixed": "2.6.3"}]
    rec = json.loads((out / "DEBIAN-CVE-2024-45490.json").read_text())
    assert rec["aliases"] == ["CVE-2024-45490"] and "XML_ParseBuffer" in rec["summary"]
    assert rec["database_specific"]["revision"] == meta["revision"]
    # Same input, same bytes; the feed is replaced whole.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run_cli("advisories", "import", "--from", "debian-changelog", str(FIXTURE), "--out", str(out), check=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_upstream_version_reads_every_really_form():
    """Debian marks a version that went back with `+really` (`1.3.dfsg+really1.3.2`) or, as
    python-click in trixie does, `+0.really.` (`8.2.0+0.really.8.1.8`): the upstream is what follows."""
    from pkgrepo.attest.debian_feed import upstream_version

    assert upstream_version("8.2.0+0.really.8.1.8-1") == "8.1.8"
    assert upstream_version("1:1.3.dfsg+really1.3.2-3") == "1.3.2"
    assert upstream_version("2.0+really1.9~dfsg-2") == "1.9"
    assert upstream_version("1:1.35.0-4+deb12u1") == "1.35.0"
    assert upstream_version("3.0.22-1~deb12u2") == "3.0.22"


def test_import_refuses_what_is_not_a_changelog_or_not_ours(tmp_path):
    bad = tmp_path / "x.changelog"
    bad.write_text("hello\n -- A <a@b>  not a date\n")
    r = run_cli("advisories", "import", "--from", "debian-changelog", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and str(bad) in r.stderr
    other = tmp_path / "y.changelog"
    other.write_text(
        "apache2 (1.0-1) unstable; urgency=low\n\n  * x\n\n -- A <a@b>  Mon, 01 Jan 2024 00:00:00 +0000\n"
    )
    r = run_cli(
        "advisories", "import", "--from", "debian-changelog", str(other), "--out", str(tmp_path / "o")
    )
    assert r.returncode == 2 and "apache2" in r.stderr and not (tmp_path / "o").exists()


def test_committed_feed_parses_whole():
    feed = load_feed(ROOT / "repo-data" / "advisories")
    assert feed.name == "debian-changelog" and len(feed.revision) == 64
    assert len(feed.advisories) > 300 and EXPAT in feed.projects
    expat = Component("expat", "2.5.0-r1", "", "expat", "", upstream=f"{EXPAT}@2.5.0")
    hits = {a.id for a in feed.advisories if a.matches(expat)}
    assert "DEBIAN-CVE-2024-45490" in hits
    newer = Component("expat", "2.9.0-r1", "", "expat", "", upstream=f"{EXPAT}@2.9.0")
    assert "DEBIAN-CVE-2024-45490" not in {a.id for a in feed.advisories if a.matches(newer)}


def test_a_fix_declared_for_a_missing_patch_is_refused(tmp_path):
    text = (ROOT / "recipes" / "hello.yaml").read_text()
    recipe = tmp_path / "hello.yaml"
    recipe.write_text(text + "\npatches:\n  - file: gone.patch\n    fixes: [CVE-2099-0001]\n")
    r = run_cli("lint", str(recipe))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "gone.patch" in r.stderr and "CVE-2099-0001" in r.stderr


def _sbom(tmp_path: Path, *components: Component) -> Path:
    path = tmp_path / "image.cdx.json"
    path.write_bytes(cyclonedx_document(Subject("image", "img", "1", 0, components)))
    return path


def test_scan_names_the_feed_and_says_no_data(tmp_path):
    expat = Component("expat", "2.5.0-r1", "MIT", "expat", "a" * 64, upstream=f"{EXPAT}@2.5.0")
    mine = Component("mine", "1.0-r1", "MIT", "mine", "b" * 64)
    sbom = _sbom(tmp_path, expat, mine)
    r = run_cli("scan", str(sbom), "--json", check=True)
    doc = json.loads(r.stdout)
    assert doc["feed"]["name"] == "debian-changelog" and doc["feed"]["covered"] == 1
    assert doc["no_data"] == ["mine"]
    assert any(
        f["advisory"] == "DEBIAN-CVE-2024-45490" and f["status"] == "affected" for f in doc["findings"]
    )
    text = run_cli("scan", str(sbom)).stdout
    assert "covers 1 of 2 packages" in text and "mine: no data" in text
    assert "no known advisories apply" not in text


def test_fail_on_treats_no_data_as_failure_unless_allowed(tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "feed.json").write_text(
        json.dumps({"name": "t", "revision": "r1", "date": "2026-01-01", "projects": [EXPAT]})
    )
    expat = Component("expat", "2.9.0-r1", "MIT", "expat", "a" * 64, upstream=f"{EXPAT}@2.9.0")
    mine = Component("mine", "1.0-r1", "MIT", "mine", "b" * 64)
    sbom = _sbom(tmp_path, expat, mine)
    r = run_cli("scan", str(sbom), "--advisories", str(feed), "--fail-on", "low")
    assert r.returncode == 1 and "no advisory data" in r.stderr and "mine" in r.stderr
    r = run_cli("scan", str(sbom), "--advisories", str(feed), "--fail-on", "low", "--allow-unknown")
    assert r.returncode == 0, r.stderr
    assert "no open advisories for the 1 covered packages" in r.stdout


def test_a_declared_fix_without_provenance_is_not_trusted(tmp_path):
    expat = Component(
        "expat", "2.5.0-r2", "MIT", "expat", "a" * 64, upstream=f"{EXPAT}@2.5.0", fixes=("CVE-2024-45490",)
    )
    doc = json.loads(run_cli("scan", str(_sbom(tmp_path, expat)), "--json", check=True).stdout)
    (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2024-45490"]
    assert f["status"] == "affected" and "no signed provenance" in f["note"]


def test_outdated_against_a_local_apt_repository(tmp_path):
    repo = tmp_path / "mirror"
    sources = repo / "dists" / "sid" / "main" / "source"
    sources.mkdir(parents=True)
    (sources / "Sources").write_text(
        "Package: expat\nBinary: libexpat1\nVersion: 99.0-1\nMaintainer: X <x@example.org>\n"
        "Architecture: any\nFormat: 3.0 (quilt)\nDirectory: pool/main/e/expat\nFiles:\n"
        " d41d8cd98f00b204e9800998ecf8427e 0 expat_99.0-1.dsc\n\n"
        # a wheel recipe's Debian source (WHEEL_SOURCES), whose version went back: upstream 8.1.8
        "Package: python-click\nBinary: python3-click\nVersion: 8.2.0+0.really.8.1.8-1\n"
        "Maintainer: X <x@example.org>\nArchitecture: all\nFormat: 3.0 (quilt)\n"
        "Directory: pool/main/p/python-click\nFiles:\n"
        " d41d8cd98f00b204e9800998ecf8427e 0 python-click_8.2.0+0.really.8.1.8-1.dsc\n\n"
    )
    listing = tmp_path / "sources.list"
    listing.write_text(f"deb-src [trusted=yes] file:{repo} sid main\n")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(ROOT / "recipes" / "expat.yaml", recipes)
    shutil.copy(ROOT / "recipes" / "py3-click.yaml", recipes)
    r = run_cli("outdated", "--recipes", str(recipes), "--debian-sources", str(listing), "--json", check=True)
    row, click = json.loads(r.stdout)["recipes"]
    assert (row["recipe"], row["newest"], row["suite"], row["state"]) == ("expat", "99.0", "sid", "outdated")
    assert row["covered"] and isinstance(row["open_advisories"], list)
    assert (click["recipe"], click["newest"], click["state"]) == ("py3-click", "8.1.8", "current")


def test_zlib_ships_no_minizip(built: Path):
    """The reason of repo-data/vex/zlib-minizip.json: minizip (CVE-2023-45853) is in zlib's source
    tree (contrib/minizip) but the recipe never builds it, so no zlib package holds its code."""
    import zstandard

    pkgs = sorted(built.glob("zlib*.pkg.tar.zst"))
    assert {p.name.split("-1.")[0] for p in pkgs} >= {"zlib", "zlib-utils", "zlib-dev"}
    for pkg in pkgs:
        files = [
            f["path"] for f in json.loads(run_cli("show", str(pkg), "--json", check=True).stdout)["files"]
        ]
        assert not [f for f in files if "minizip" in f or f.endswith(("/zip.h", "/unzip.h", "/ioapi.h"))]
        with pkg.open("rb") as f:
            payload = zstandard.ZstdDecompressor().stream_reader(f).read()
        assert b"zipOpenNewFileInZip4_64" not in payload and b"unzOpen" not in payload, pkg.name
        if pkg.name.startswith("zlib-1."):  # the search sees symbols: zlib's own are there
            assert b"deflateInit2_" in payload
    doc = json.loads(run_cli("scan", str(built / pkgs[0].name), "--json", check=True).stdout)
    # zlib 1.3.1 fixed minizip upstream: a zlib inside the range is answered by the VEX statement
    for f in [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2023-45853"]:
        assert f["status"] == "not_affected" and f["note"] == "vulnerable_code_not_present"


def test_built_package_carries_its_upstream_identity(built: Path):
    from pkgrepo.package.archive import read_info

    (pkg,) = built.glob("zlib-1.*.pkg.tar.zst")
    info = read_info(pkg)
    assert info.upstream and info.upstream.startswith("pkg:github/madler/zlib@")
    assert info.cpe and info.cpe.startswith("cpe:2.3:a:zlib:zlib:")
    spdx = json.loads(pkg.with_name(pkg.name + ".spdx.json").read_text())
    refs = {
        (r["referenceType"], r["referenceLocator"])
        for p in spdx["packages"]
        for r in p.get("externalRefs", [])
    }
    assert ("purl", info.upstream) in refs and ("cpe23Type", info.cpe) in refs
    cdx = json.loads(pkg.with_name(pkg.name + ".cdx.json").read_text())
    (c,) = [c for c in cdx["components"] if c["name"] == "zlib"]
    assert c["cpe"] == info.cpe and c["pedigree"]["ancestors"][0]["purl"] == info.upstream


def test_a_declared_fix_counts_only_with_its_patch_in_signed_provenance(built: Path, tmp_path: Path):
    recipes, out = tmp_path / "recipes", tmp_path / "packages"
    recipes.mkdir()
    shutil.copytree(built, out, ignore=shutil.ignore_patterns("zlib*"))
    (recipes / "fix.patch").write_text("--- /dev/null\n+++ b/SECURITY-FIX\n@@ -0,0 +1 @@\n+CVE-2023-45853\n")
    text = (ROOT / "recipes" / "zlib.yaml").read_text().replace("  release: 1\n", "  release: 2\n", 1)
    (recipes / "zlib.yaml").write_text(
        text.replace(
            "\nbuild-depends:",
            "\npatches:\n  - file: fix.patch\n    fixes: [CVE-2023-45853]\n\nbuild-depends:",
        )
    )
    for name in ("musl", "busybox"):  # with their patch directories: a declared fix needs its patch
        shutil.copy(ROOT / "recipes" / f"{name}.yaml", recipes)
        if (ROOT / "recipes" / name).is_dir():
            shutil.copytree(ROOT / "recipes" / name, recipes / name)
    run_cli("build", "zlib", "--recipes", str(recipes), "--out", str(out), check=True)
    (pkg,) = out.glob("zlib-1.*-r2.*.pkg.tar.zst")
    novex, feed = tmp_path / "novex", tmp_path / "feed"
    novex.mkdir()
    feed.mkdir()
    # the real record, its range opened so that it covers the zlib the recipe builds today
    record = json.loads((ROOT / "repo-data/advisories/DEBIAN-CVE-2023-45853.json").read_text())
    record["affected"][0]["ranges"] = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
    (feed / "DEBIAN-CVE-2023-45853.json").write_text(json.dumps(record))
    doc = json.loads(
        run_cli("scan", str(pkg), "--vex", str(novex), "--advisories", str(feed), "--json", check=True).stdout
    )
    (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2023-45853"]
    assert f["status"] == "fixed" and "signed provenance" in f["note"]
    statements = json.loads(run_cli("vex", str(pkg), check=True).stdout)["statements"]
    assert [(s["vulnerability"]["name"], s["status"]) for s in statements] == [("CVE-2023-45853", "fixed")]
    assert statements[0]["products"][0]["@id"].startswith(
        f"pkg:generic/pkgrepo/zlib@{pkg.name.split('-')[1]}-r2"
    )
    # The same claim with provenance that does not hold the patch (the r1 build's) is not trusted.
    (old,) = built.glob("zlib-1.*-r1.*.pkg.tar.zst")
    forged = tmp_path / "forged"
    forged.mkdir()
    shutil.copy(old.with_name(old.name + ".intoto.json"), forged / (pkg.name + ".intoto.json"))
    shutil.copy(out / "provenance.pub", forged)
    doc = json.loads(
        run_cli(
            "scan",
            str(pkg),
            "--vex",
            str(novex),
            "--advisories",
            str(feed),
            "--provenance",
            str(forged),
            "--json",
            check=True,
        ).stdout
    )
    (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2023-45853"]
    assert f["status"] == "affected" and "no signed provenance" in f["note"]

    # A prod root drops files a package brings (here zlib's libz.so.1 link, by the spec's
    # exclude): its installed content is not the whole content the provenance attests, but each
    # file it keeps is one of the signed package's, so the fix still counts. A kept file that is
    # not the package's bytes is not proven.
    spec = tmp_path / "z.yaml"
    spec.write_text("name: z\npackages: [zlib]\nexclude: [usr/lib/libz.so.1]\n")
    root = tmp_path / "root"
    run_cli(
        "image", "build", str(spec), "--packages", str(out), "--profile", "prod", "--rootfs", str(root),
        check=True,
    )  # fmt: skip
    assert not os.path.lexists(root / "usr/lib/libz.so.1") and (root / "usr/lib").glob("libz.so.1.*")

    def status() -> dict:
        scan = ["scan", str(root), "--vex", str(novex), "--advisories", str(feed), "--provenance", str(out)]
        doc = json.loads(run_cli(*scan, "--json", check=True).stdout)
        (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2023-45853"]
        return f

    assert status()["status"] == "fixed"
    verify = ["verify", str(root), "--provenance", str(out), "--key", str(out / "provenance.pub")]
    run_cli(*verify, check=True)  # the kept files are the signed build's
    (lib,) = (root / "usr/lib").glob("libz.so.1.*")
    lib.write_bytes(lib.read_bytes() + b"\0")
    assert status()["status"] == "affected"
    proc = run_cli(*verify)
    assert proc.returncode == 2 and "zlib: installed files differ" in proc.stderr
