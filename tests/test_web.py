"""The web catalogue (issue 18): generated from the verified repository only, escaped, written
atomically, deterministic, and browsed in Debian's chromium (selenium with chromium-driver)
against the real `pkgrepo serve` and against nginx serving it as plain files.

Screenshots of the index and of a package page are written to the directory the browser test
prints (`web screenshots: DIR`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest

from pkgrepo.package.archive import read_info, scan_tree, write_package
from pkgrepo.package.meta import PackageInfo
from tests.helpers.cli import run_cli
from tests.helpers.servers import NginxServer, PkgrepoServer

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & more'
ZLIB = "zlib-[0-9]*-r1.x86_64.pkg.tar.zst"  # a glob: whatever zlib release the recipe builds
ADVISORY = {
    "id": "PKGREPO-2024-0001",
    "aliases": ["CVE-2022-37434"],
    "summary": "zlib inflate <b>heap</b> overflow",
    "database_specific": {"severity": "CRITICAL"},
    "affected": [
        {
            "package": {"ecosystem": "pkgrepo", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99-r1"}]}],
        }
    ],
}
VEX = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://openvex.dev/docs/pkgrepo/web-1",
    "author": "pkgrepo security",
    "timestamp": "2024-01-01T00:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2022-37434"},
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
            "products": [{"@id": "pkg:generic/pkgrepo/zlib-utils?arch=x86_64"}],
        }
    ],
}


def package(out: Path, name: str, description: str, depends: tuple[str, ...] = (), homepage=None) -> Path:
    """A small real package with the given description (no evidence beside it)."""
    stage = out / f".stage-{name}"
    (stage / "usr/share" / name).mkdir(parents=True)
    (stage / "usr/share" / name / "README").write_text(f"{name}\n")
    manifest = scan_tree(stage, [f"usr/share/{name}/README"])
    info = PackageInfo(
        name=name,
        version="1.0",
        origin=name,
        description=description,
        license="MIT",
        homepage=homepage,
        depends=list(depends),
        installed_size=sum(e.size for e in manifest),
        build_date=1_700_000_000,
    )
    return write_package(stage, manifest, info, out / info.filename)


@pytest.fixture(scope="module")
def site(built: Path, tmp_path_factory) -> dict:
    """A repository of the built packages plus one with a hostile description, with its site."""
    work = tmp_path_factory.mktemp("web")
    keys, repo, data = work / "keys", work / "repo", work / "data"
    (data / "advisories").mkdir(parents=True)
    (data / "vex").mkdir()
    (data / "advisories" / "zlib.json").write_text(json.dumps(ADVISORY))
    (data / "vex" / "zlib.json").write_text(json.dumps(VEX))
    extra = work / "extra"
    extra.mkdir()
    evil = package(extra, "evil-desc", HOSTILE, ("zlib",), homepage="javascript:window.pwned=3")
    run_cli("repo", "init", str(repo), "--keys", str(keys), check=True)
    files = [str(p) for p in sorted(built.glob("*.pkg.tar.zst"))] + [str(evil)]
    where = ["--advisories", str(data / "advisories"), "--vex", str(data / "vex")]
    proc = run_cli("publish", "--repo", str(repo), "--keys", str(keys), *where, *files, check=True)
    assert f"site {repo}/web/index.html" in proc.stdout
    names = sorted({read_info(Path(p)).name for p in files})
    return {"repo": repo, "keys": keys, "where": where, "names": names, "work": work}


def web(repo: Path) -> Path:
    return repo / "web"


def test_every_signed_package_has_a_page_and_nothing_else(site: dict):
    pages = sorted(p.stem for p in (web(site["repo"]) / "p").glob("*.html"))
    assert pages == site["names"]
    index = (web(site["repo"]) / "index.html").read_text()
    for name in site["names"]:
        assert f'href="p/{name}.html"' in index


def test_untrusted_text_is_escaped(site: dict):
    page = (web(site["repo"]) / "p" / "evil-desc.html").read_text()
    assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert 'href="javascript:' not in page and "<code>javascript:window.pwned=3</code>" in page
    advisory = (web(site["repo"]) / "a" / "PKGREPO-2024-0001.html").read_text()
    assert "&lt;b&gt;heap&lt;/b&gt;" in advisory


def test_evidence_links_are_signed_targets(site: dict):
    repo = site["repo"]
    page = (web(repo) / "p" / "zlib.html").read_text()
    for suffix in ("", ".spdx.json", ".cdx.json", ".intoto.json"):
        digest_name = next((repo / "targets" / "packages").glob(f"*.{ZLIB}{suffix}")).name
        assert f'href="../../targets/packages/{digest_name}"' in page
    assert "verified: signed by key" in page and "urn:pkgrepo:builder:bubblewrap" in page
    assert "so:libz.so.1" in page and 'href="musl.html"' in page and 'href="evil-desc.html"' in page
    assert "sha256" in page and "usr/lib/libz.so.1" in page


def test_advisory_statuses_with_vex_justification(site: dict):
    page = (web(site["repo"]) / "a" / "PKGREPO-2024-0001.html").read_text()
    assert "CVE-2022-37434" in page and "critical" in page
    rows = {
        name: page.split(f'p/{name}.html">{name}</a></td>', 1)[1].split("</tr>", 1)[0]
        for name in ("zlib", "zlib-utils")
    }
    assert "affected" in rows["zlib"] and "not affected" not in rows["zlib"]
    assert (
        "not affected" in rows["zlib-utils"] and "vulnerable_code_not_in_execute_path" in rows["zlib-utils"]
    )


def test_same_repository_same_bytes(site: dict, tmp_path: Path):
    repo = site["repo"]
    before = os.readlink(web(repo))
    proc = run_cli("repo", "web", str(repo), *site["where"], "--json", check=True)
    assert os.readlink(web(repo)) == before
    assert json.loads(proc.stdout)["digest"].startswith(before.rsplit("/", 1)[1])
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    shutil.rmtree(copy / ".sites")
    (copy / "web").unlink()
    run_cli("repo", "web", str(copy), *site["where"], check=True)
    assert os.readlink(copy / "web") == before
    for p in sorted(web(repo).rglob("*")):
        if p.is_file():
            assert (copy / "web" / p.relative_to(web(repo))).read_bytes() == p.read_bytes(), p


def test_unsigned_or_altered_files_are_not_shown(site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    planted = package(tmp_path, "planted", "not signed")
    shutil.copy(planted, copy / "targets" / "packages" / f"{'0' * 64}.{planted.name}")
    run_cli("repo", "web", str(copy), *site["where"], check=True)
    assert not (copy / "web" / "p" / "planted.html").exists()
    assert "planted" not in (copy / "web" / "index.html").read_text()
    # a signed package whose bytes were altered on disk, read for the first time (its file
    # list is not in the cache yet): refused, the old site stays
    old = os.readlink(copy / "web")
    target = next((copy / "targets" / "packages").glob(f"*.{ZLIB}"))
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    proc = run_cli("repo", "web", str(copy), *site["where"], env={"PKGREPO_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2 and "altered" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert os.readlink(copy / "web") == old


def test_refuses_a_web_path_it_did_not_make(site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    (copy / "web").unlink()
    (copy / "web").mkdir()
    (copy / "web" / "mine.html").write_text("mine")
    proc = run_cli("repo", "web", str(copy), *site["where"])
    assert proc.returncode == 2 and "web: exists and is not the site link" in proc.stderr
    assert (copy / "web" / "mine.html").read_text() == "mine"
    proc = run_cli("repo", "web", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "not a repository" in proc.stderr
    assert not (tmp_path / "nothing").exists()


@pytest.mark.slow
def test_image_records_are_signed_in_and_shown(image_packages: Path, site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    spec = Path(__file__).resolve().parents[1] / "repo-data" / "images" / "lua-app.yaml"
    images = tmp_path / "images"
    images.mkdir()
    for profile in ("prod", "dev"):
        run_cli(
            "image", "build", str(spec), "--profile", profile, "--packages", str(image_packages),
            "--out", str(images / f"lua-app-{profile}"), check=True,
        )  # fmt: skip
    lua = [str(p) for p in sorted(image_packages.glob("lua*.pkg.tar.zst"))]  # built after the site
    run_cli("publish", "--repo", str(copy), "--keys", str(site["keys"]), *site["where"], *lua, check=True)
    proc = run_cli(
        "repo",
        "web",
        str(copy),
        "--images",
        str(images),
        "--keys",
        str(site["keys"]),
        *site["where"],
        check=True,
    )
    assert "published images/lua-app.json" in proc.stdout
    page = (copy / "web" / "i" / "lua-app.html").read_text()
    prod = json.loads((images / "lua-app-prod" / "index.json").read_text())["manifests"][0]["digest"]
    dev = json.loads((images / "lua-app-dev" / "index.json").read_text())["manifests"][0]["digest"]
    assert prod in page and dev in page and "Uncompressed" in page
    assert (
        'href="../p/lua.html"' in page
        and "What dev adds to prod" in page
        and 'href="../p/busybox.html"' in page
    )
    assert f"FROM REGISTRY/lua-app@{prod}" in page and "ENTRYPOINT" in page
    # the record is a signed target: a later publish keeps the image page
    again = package(tmp_path, "later", "published after the image")
    run_cli(
        "publish", "--repo", str(copy), "--keys", str(site["keys"]), *site["where"], str(again), check=True
    )
    assert (copy / "web" / "i" / "lua-app.html").is_file()


# --- in the browser ---------------------------------------------------------------------------


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    profile = tempfile.mkdtemp(prefix="pkgrepo-chromium-")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1200,1400",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "chromedriver"))
    driver.set_page_load_timeout(30)
    return driver, profile


@pytest.fixture(scope="module")
def browser():
    driver, profile = chrome()
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def visible(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        li.find_element(By.TAG_NAME, "a").text
        for li in driver.find_elements(By.CSS_SELECTOR, "#list > li")
        if li.is_displayed()
    ]


def shots_dir() -> Path:
    out = Path(os.environ.get("PKGREPO_ARTIFACTS") or tempfile.gettempdir()) / "pkgrepo-web-screenshots"
    out.mkdir(parents=True, exist_ok=True)
    print(f"web screenshots: {out}")
    return out


def test_browse_the_catalogue(site: dict, browser, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    copy = tmp_path / "repo"
    shutil.copytree(site["repo"], copy, symlinks=True)
    server = PkgrepoServer(copy)
    try:
        index = server.url + "web/index.html"
        with urllib.request.urlopen(index) as r:
            kind = r.headers["Content-Type"]
        assert kind.startswith("text/html"), f"pkgrepo serve sent {kind} for a page; it must send text/html"
        browser.get(index)
        assert sorted(visible(browser)) == site["names"]
        out = shots_dir()
        browser.save_screenshot(str(out / "index.png"))
        box = browser.find_element(By.ID, "q")
        box.send_keys("compression")  # in descriptions only: zlib's
        WebDriverWait(browser, 5).until(lambda d: len(visible(d)) < len(site["names"]))
        assert "zlib" in visible(browser) and "musl" not in visible(browser)
        box.clear()
        box.send_keys("busy")
        WebDriverWait(browser, 5).until(lambda d: visible(d) == ["busybox"])
        # a package page links to its dependencies and to its SBOM, which is served
        browser.get(server.url + "web/p/zlib.html")
        browser.save_screenshot(str(out / "zlib.png"))
        browser.find_element(By.LINK_TEXT, "musl").click()
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "musl")
        browser.back()
        sbom = browser.find_element(By.PARTIAL_LINK_TEXT, "SBOM (SPDX").get_attribute("href")
        with urllib.request.urlopen(sbom) as r:
            assert json.loads(r.read())["spdxVersion"] == "SPDX-2.3"
        # the hostile description is text, and none of its script ran
        browser.get(server.url + "web/p/evil-desc.html")
        assert browser.find_element(By.CSS_SELECTOR, "p.lead").text == HOSTILE
        assert browser.execute_script("return window.pwned === undefined")
        assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
        browser.find_element(By.LINK_TEXT, "zlib")  # its dependency is a link
        # a package published later appears after the next publish, served by the same server
        later = package(tmp_path, "later-pkg", "published after the first visit")
        run_cli(
            "publish",
            "--repo",
            str(copy),
            "--keys",
            str(site["keys"]),
            *site["where"],
            str(later),
            check=True,
        )
        browser.get(index)
        assert "later-pkg" in visible(browser)
        browser.find_element(By.LINK_TEXT, "later-pkg").click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "later-pkg"
        # phone width: no horizontal scrolling
        browser.set_window_size(390, 844)
        browser.get(server.url + "web/p/zlib.html")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(out / "zlib-phone.png"))
        browser.set_window_size(1200, 1400)
    finally:
        assert server.stop() in (0, -15)


def test_nginx_serves_the_site_as_plain_files(site: dict, tmp_path: Path, browser):
    nginx = NginxServer(site["repo"], tmp_path / "nginx")
    try:
        browser.get(nginx.url + "web/index.html")
        assert sorted(visible(browser)) == site["names"]
        browser.get(nginx.url + "web/p/hello.html")
        href = browser.find_element(by="partial link text", value="SBOM (CycloneDX").get_attribute("href")
        with urllib.request.urlopen(href) as r:
            assert json.loads(r.read())["bomFormat"] == "CycloneDX"
    finally:
        nginx.stop()
