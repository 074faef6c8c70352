"""The web catalogue (issue 18): generated from the verified repository only, escaped, written
atomically, deterministic, and browsed in Debian's chromium (selenium with chromium-driver)
against the real `pkgrepo serve` and against nginx serving it as plain files.

Screenshots of the index, of zlib's page (desktop and phone width) and, in the slow test that
takes python3 from the build cache, of python3's page are written to the directory the browser
tests print (`web screenshots: DIR`, under $PKGREPO_ARTIFACTS when set)."""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from pkgrepo.package.archive import read_info, scan_tree, write_package
from pkgrepo.package.meta import PackageInfo
from tests.helpers.cli import build_cached, run_cli
from tests.helpers.servers import NginxServer, PkgrepoServer

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & more'
ZLIB = "zlib-[0-9]*-r1.x86_64.pkg.tar.zst"  # a glob: whatever zlib release the recipe builds
ADVISORY = {
    "id": "PKGREPO-2024-0001",
    "aliases": ["CVE-2022-37434"],
    "summary": "zlib inflate <b>heap</b> overflow<script>window.pwned = 4</script>",
    "database_specific": {"severity": "CRITICAL"},
    "affected": [
        {
            "package": {"ecosystem": "pkgrepo", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99-r1"}]}],
        }
    ],
}
UPSTREAM_ADVISORY = {  # filed under an upstream project, as the Debian feed files them
    "id": "PKGREPO-2024-0002",
    "summary": "upthing mishandles input",
    "affected": [
        {
            "package": {"ecosystem": "upstream", "name": "upthing", "purl": "pkg:generic/example/upthing"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
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


def package(
    out: Path, name: str, description: str, depends: tuple[str, ...] = (), homepage=None, upstream=None
) -> Path:
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
        upstream=upstream,
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
    (data / "advisories" / "upthing.json").write_text(json.dumps(UPSTREAM_ADVISORY))
    (data / "vex" / "zlib.json").write_text(json.dumps(VEX))
    extra = work / "extra"
    extra.mkdir()
    evil = package(extra, "evil-desc", HOSTILE, ("zlib",), homepage="javascript:window.pwned=3")
    up = package(extra, "upthing", "an upstream project's build", upstream="pkg:generic/example/upthing@1.5")
    run_cli("repo", "init", str(repo), "--keys", str(keys), check=True)
    files = [str(p) for p in sorted(built.glob("*.pkg.tar.zst"))] + [str(evil), str(up)]
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


def test_every_link_resolves(site: dict):
    """Every relative link of every page names a file of the site or a target of the repository."""
    repo = site["repo"]
    checked = 0
    for page in sorted(web(repo).rglob("*.html")):
        for href in re.findall(r'href="([^"#]+)', page.read_text()):
            if href.startswith(("http://", "https://")):
                continue
            url = page.relative_to(repo).as_posix()  # as a browser resolves it: by the URL's path
            where = posixpath.normpath(posixpath.join(posixpath.dirname(url), html.unescape(href)))
            assert (repo / where).is_file(), f"{url}: {href} leads nowhere"
            checked += 1
    assert checked > 100


def test_untrusted_text_is_escaped(site: dict):
    page = (web(site["repo"]) / "p" / "evil-desc.html").read_text()
    assert "<script>window" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert 'href="javascript:' not in page and "<code>javascript:window.pwned=3</code>" in page
    advisory = (web(site["repo"]) / "a" / "PKGREPO-2024-0001.html").read_text()
    assert "&lt;b&gt;heap&lt;/b&gt;" in advisory and "<script>window" not in advisory


def test_evidence_links_are_signed_targets(site: dict):
    repo = site["repo"]
    page = (web(repo) / "p" / "zlib.html").read_text()
    for suffix in ("", ".spdx.json", ".cdx.json", ".intoto.json"):
        digest_name = next((repo / "targets" / "packages").glob(f"*.{ZLIB}{suffix}")).name
        assert f'href="../../targets/packages/{digest_name}"' in page
    assert "verified: signed by key" in page and "urn:pkgrepo:builder:bubblewrap" in page
    assert "so:libz.so.1" in page and 'href="musl.html"' in page and 'href="evil-desc.html"' in page
    assert "sha256" in page and "usr/lib/libz.so.1" not in page  # the file list is a page of its own
    target = next((repo / "targets" / "packages").glob(f"*.{ZLIB}")).name  # SHA256.FILENAME
    filename = target.split(".", 1)[1]
    assert f'href="../f/{filename}.html">The list of files</a>' in page
    listed = (web(repo) / "f" / f"{filename}.html").read_text()
    assert "<code>/usr/lib/libz.so.1 &rarr; libz.so.1." in listed and 'href="../p/zlib.html#v-' in listed
    assert f'href="../../targets/packages/{target}"' in listed


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


def test_advisories_filed_under_an_upstream_project_match_its_builds(site: dict):
    page = (web(site["repo"]) / "a" / "PKGREPO-2024-0002.html").read_text()
    row = page.split('p/upthing.html">upthing</a></td>', 1)[1].split("</tr>", 1)[0]
    assert "affected" in row and "not affected" not in row
    package_page = (web(site["repo"]) / "p" / "upthing.html").read_text()
    assert 'href="../a/PKGREPO-2024-0002.html"' in package_page
    index = (web(site["repo"]) / "index.html").read_text()
    assert 'upthing.html">upthing</a> <span class="ver">1.0-r1</span> <span class="status affected">' in index


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


def test_vex_documents_are_checked_once_and_again_when_changed(tmp_path: Path):
    """The OpenVEX schema check imports jsonschema (seconds): the same documents are checked
    once per user cache, and a changed document is checked again and refused."""
    vex, cache = tmp_path / "vex", tmp_path / "cache"
    vex.mkdir()
    (vex / "zlib.json").write_text(json.dumps(VEX))
    load = (
        "import sys; from pathlib import Path; from pkgrepo.web.vexcache import load_vex_cached; "
        "s = load_vex_cached(Path(sys.argv[1]), Path(sys.argv[2])); "
        "print(len(s), s[0].justification, 'jsonschema' in sys.modules)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", load, str(vex), str(cache)], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    justified = ["1", "vulnerable_code_not_in_execute_path"]
    assert runs == [[*justified, "True"], [*justified, "False"]]  # checked, then remembered
    run_cli("repo", "init", str(tmp_path / "repo"), "--keys", str(tmp_path / "keys"), check=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "user-cache")}
    web = ["repo", "web", str(tmp_path / "repo"), "--vex", str(vex)]
    run_cli(*web, env=env, check=True)
    (vex / "zlib.json").write_text(json.dumps({**VEX, "statements": [{"status": "bogus"}]}))
    proc = run_cli(*web, env=env)
    assert proc.returncode == 2 and "zlib.json: not a valid OpenVEX document" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def tree(directory: Path) -> dict[str, bytes]:
    """Every file of a site by relative path (a link in it fails: pkgrepo writes none)."""
    out = {}
    for p in sorted(directory.rglob("*")):
        assert not p.is_symlink(), f"{p}: a link in a site"
        if p.is_file():
            out[p.relative_to(directory).as_posix()] = p.read_bytes()
    return out


def full_generation(repo: Path, where: list[str], tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    """(link, files) of the site of a copy of `repo` generated from nothing (no site, no cache)."""
    fresh = Path(tempfile.mkdtemp(prefix="full-", dir=tmp_path)) / repo.name
    shutil.copytree(repo, fresh, symlinks=True, ignore=shutil.ignore_patterns(".sites", "web"))
    run_cli(
        "repo", "web", str(fresh), *where, env={"PKGREPO_CACHE": str(tmp_path / "full-cache")}, check=True
    )
    return os.readlink(fresh / "web"), tree(fresh / "web")


def test_incremental_generation_gives_the_bytes_of_a_full_one(site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    first = json.loads(
        run_cli("repo", "web", str(copy), *site["where"], "--json", env=env, check=True).stdout
    )
    assert first["pages_reused"] == 0  # nothing recorded in this cache yet
    before = (copy / "web").resolve()
    later = package(tmp_path, "later-inc", "published after the first site", ("zlib",))
    keys = ["--keys", str(site["keys"])]
    run_cli("publish", "--repo", str(copy), *keys, *site["where"], str(later), env=env, check=True)
    after = (copy / "web").resolve()
    assert after != before
    # unchanged pages are the previous site's files, hard-linked; changed ones are rendered
    same = lambda rel: (after / rel).stat().st_ino == (before / rel).stat().st_ino  # noqa: E731
    assert same("p/musl.html") and same("a/PKGREPO-2024-0001.html")
    assert not same("p/zlib.html") and "later-inc.html" in (after / "p/zlib.html").read_text()
    assert not same("index.html")
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_what_was_learnt_before_answers_only_the_same_inputs(site: dict, tmp_path: Path):
    """Provenance states are remembered in the user's cache, advisory statuses are not: other
    advisories or VEX statements (same packages, same cache) give the site a full generation
    with them gives."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    assert json.loads((tmp_path / "cache" / "web" / "learnt.json").read_text())
    zlib = (copy / "web" / "p" / "zlib.html").read_text()
    assert (
        "vulnerable_code_not_in_execute_path" in (copy / "web" / "a" / "PKGREPO-2024-0001.html").read_text()
    )
    data = tmp_path / "data"
    shutil.copytree(Path(site["where"][1]).parent, data)
    (data / "vex" / "zlib.json").unlink()  # the statement goes: zlib-utils is affected again
    fixed = {**ADVISORY, "affected": [{**ADVISORY["affected"][0], "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.1-r1"}]}]}]}  # fmt: skip
    (data / "advisories" / "zlib.json").write_text(json.dumps(fixed))
    where = ["--advisories", str(data / "advisories"), "--vex", str(data / "vex")]
    run_cli("repo", "web", str(copy), *where, env=env, check=True)
    assert (copy / "web" / "p" / "zlib.html").read_text() != zlib
    assert (
        "vulnerable_code_not_in_execute_path"
        not in (copy / "web" / "a" / "PKGREPO-2024-0001.html").read_text()
    )
    assert full_generation(copy, where, tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def _spoiled(spoil):
    """A change to every record of learnt.json's data."""

    def change(data: dict) -> dict:
        for record in data.values():
            spoil(record)
        return data

    return change


@pytest.mark.parametrize(
    "spoil",
    [
        _spoiled(lambda r: r.update(ok="")),
        _spoiled(lambda r: r.update(state=["<b>"])),
        _spoiled(lambda r: r.update(sources=[[1, 2]])),
        _spoiled(lambda r: r.pop("state")),
        _spoiled(lambda r: r.update(sources=["ab"])),
        _spoiled(lambda r: r.update(patches=[{"file": "f.patch", "sha256": None, "fixes": "CVE-1"}])),
        _spoiled(lambda r: r.update(patches=[{"file": "f.patch", "sha256": 7, "fixes": []}])),
        _spoiled(lambda r: r.update(extra=1)),
        lambda data: {name: "verified" for name in data},
        lambda data: list(data.values()),
        lambda data: b'{"' + json.dumps(data).encode()[2:40],  # truncated
        lambda data: b"\xff\xfe junk",
        lambda data: {name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] for name in data},
        lambda data: b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=[
        "ok-not-bool",
        "state-not-text",
        "sources-not-text",
        "state-missing",
        "source-a-string",
        "fixes-a-string",
        "patch-hash-a-number",
        "unknown-field",
        "records-strings",
        "not-an-object",
        "truncated",
        "junk",
        "records-nested",
        "nested-past-the-bound",
    ],
)
def test_learnt_records_not_of_their_types_are_learnt_again(site: dict, tmp_path: Path, spoil):
    """A learnt.json in the user's cache that is not one, or whose records are not of their
    fields' types (hand-edited, cut short, written by another version), is not shown: the
    provenance is learnt again, no traceback, and the site equals a full generation."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    record = tmp_path / "cache" / "web" / "learnt.json"
    spoilt = spoil(json.loads(record.read_text()))
    record.write_bytes(spoilt if isinstance(spoilt, bytes) else json.dumps(spoilt).encode())
    (copy / "web").unlink()  # no previous site: every page is rendered from what is learnt
    done = run_cli("repo", "web", str(copy), *site["where"], env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


@pytest.mark.parametrize("kind", ["fifo", "link-to-fifo", "link-to-zero"])
def test_a_cache_record_not_a_regular_file_is_not_read(site: dict, tmp_path: Path, kind: str):
    """The learnt records that are a FIFO or a link (to a FIFO, to /dev/zero) are neither
    waited on nor followed: the provenance is learnt again, and the site equals a full
    generation."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    record = tmp_path / "cache" / "web" / "learnt.json"
    record.unlink()
    if kind == "fifo":
        os.mkfifo(record)
    else:
        record.symlink_to(fifo if kind == "link-to-fifo" else "/dev/zero")
    (copy / "web").unlink()
    done = run_cli("repo", "web", str(copy), *site["where"], env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_a_provenance_state_of_the_file_on_disk_is_not_remembered(site: dict, tmp_path: Path):
    """A provenance file altered on disk since it was signed shows as not verifying, and that is
    not remembered: it depends on the file found, not on the signed bytes, so once the signed
    bytes are back the same cache shows the provenance verified."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    target = next((copy / "targets" / "packages").glob("*.zlib-[0-9]*-r1.x86_64.pkg.tar.zst.intoto.json"))
    signed = target.read_bytes()
    target.write_bytes(signed.replace(b"{", b" {", 1))
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    assert "does not verify" in (copy / "web" / "p" / "zlib.html").read_text()
    target.write_bytes(signed)
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    assert "verified: signed by key" in (copy / "web" / "p" / "zlib.html").read_text()
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_bins_checked_before_are_checked_again_when_their_bytes_change(site: dict, tmp_path: Path):
    """Hash bins verified before are not checked again while their bytes are the same; a bin
    altered since (a target added, signatures kept) is checked and refused, and a cache record
    that is not one is ignored."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    remembered = tmp_path / "cache" / "web" / "bins.json"
    current: dict[str, Path] = {}  # each bin's current version
    for p in sorted((copy / "metadata").glob("*.bins-*.json"), key=lambda p: int(p.name.split(".")[0])):
        current[p.name.split(".", 1)[1]] = p
    signing = [p for p in current.values() if json.loads(p.read_bytes())["signed"]["targets"]]
    assert 0 < len(signing) < len(current) == 256
    # each bin that signs a target is remembered; one that signs nothing is not even checked
    assert len(json.loads(remembered.read_bytes())) == len(signing)
    old = os.readlink(copy / "web")
    binfile = max((copy / "metadata").glob("*.bins-*.json"), key=lambda p: (p.stat().st_size, p.name))
    doc = json.loads(binfile.read_bytes())
    doc["signed"]["targets"]["packages/forged.pkg.tar.zst"] = {"length": 1, "hashes": {"sha256": "0" * 64}}
    binfile.write_text(json.dumps(doc))
    proc = run_cli("repo", "web", str(copy), *site["where"], env=env)
    assert proc.returncode == 2 and "is not signed by the keys its delegator names" in proc.stderr
    assert os.readlink(copy / "web") == old
    shutil.copytree(site["repo"] / "metadata", copy / "metadata", dirs_exist_ok=True)
    remembered.write_text('{"x": [1, "not targets"]}')
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_killed_generation_leaves_the_old_site_whole(site: dict, tmp_path: Path):
    """SIGKILL while the new site's files are being written: `web` still serves the old site,
    whole; the next run removes the leftovers and its site equals a full generation."""
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    later = package(tmp_path, "later-kill", "published without a site")
    keys = ["--keys", str(site["keys"])]
    run_cli("publish", "--repo", str(copy), *keys, "--no-web", str(later), check=True)
    old_link, old = os.readlink(copy / "web"), tree(copy / "web")
    many = ["--advisories", str(Path(__file__).resolve().parents[1] / "repo-data" / "advisories")]
    many += site["where"][2:]  # hundreds of advisory pages: a write that lasts long enough
    killed = 0
    for attempt in range(5):
        env = {**os.environ, "PKGREPO_CACHE": str(tmp_path / f"cache{attempt}")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pkgrepo", "repo", "web", str(copy), *many],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                partial = list((copy / ".sites").glob(".tmp-*/a/*.html"))
                if len(partial) > 20:  # in the middle of writing the new site
                    proc.kill()
                    killed += 1
                    break
                time.sleep(0.001)
        finally:
            proc.kill()
            proc.wait()
        if killed:
            break
    assert killed, "never caught the generation while it wrote the site"
    assert os.readlink(copy / "web") == old_link and tree(copy / "web") == old
    assert list((copy / ".sites").glob(".tmp-*"))  # the half-written site, never served
    run_cli("repo", "web", str(copy), *many, check=True)
    assert not list((copy / ".sites").glob(".tmp-*"))
    assert "later-kill.html" in (copy / "web" / "index.html").read_text()
    assert full_generation(copy, many, tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_two_publishes_at_once_both_appear(site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    keys = ["--keys", str(site["keys"])]
    publish = [sys.executable, "-m", "pkgrepo", "publish", "--repo", str(copy), *keys, *site["where"]]
    files = [
        package(tmp_path, n, f"published at the same time as the other ({n})") for n in ("both-a", "both-b")
    ]
    procs = [subprocess.Popen([*publish, str(f)], stderr=subprocess.PIPE, text=True) for f in files]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    index = (copy / "web" / "index.html").read_text()
    assert 'href="p/both-a.html"' in index and 'href="p/both-b.html"' in index
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))


def test_planted_links_and_edits_are_not_followed_or_kept(site: dict, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(site["repo"], copy, symlinks=True)
    env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    current = (copy / "web").resolve()
    # a page of the served site replaced by a link out, another edited in place
    (current / "p" / "musl.html").unlink()
    (current / "p" / "musl.html").symlink_to(outside / "secret.txt")
    edited = current / "a" / "PKGREPO-2024-0001.html"
    edited.write_text(edited.read_text().replace("critical", "harmless"))
    # and a third replaced by a FIFO: not waited on (neither by the publish nor by its child)
    fifo = next(p for p in sorted((current / "a").glob("*.html")) if p != edited)
    fifo.unlink()
    os.mkfifo(fifo)
    keys = ["--keys", str(site["keys"])]
    later = package(tmp_path, "later-link", "published after the tampering")
    publish = ["publish", "--repo", str(copy), *keys, *site["where"], str(later)]
    run_cli(*publish, env=env, check=True, timeout=120)
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))
    assert b"SECRET" not in b"".join(tree(copy / "web").values())
    # the served site's a/ made a link to a copy of it elsewhere (the same bytes): never linked from
    current, elsewhere = (copy / "web").resolve(), tmp_path / "elsewhere"
    shutil.copytree(current / "a", elsewhere)
    shutil.rmtree(current / "a")
    (current / "a").symlink_to(elsewhere)
    later = package(tmp_path, "later-dir", "published after a/ became a link")
    run_cli("publish", "--repo", str(copy), *keys, *site["where"], str(later), env=env, check=True)
    outside_inodes = {p.stat().st_ino for p in elsewhere.iterdir()}
    assert outside_inodes and not outside_inodes & {p.stat().st_ino for p in (copy / "web" / "a").iterdir()}
    assert full_generation(copy, site["where"], tmp_path) == (os.readlink(copy / "web"), tree(copy / "web"))
    # `web` made a link to a directory outside: replaced by the site's link, the directory untouched
    (copy / "web").unlink()
    (copy / "web").symlink_to(outside)
    run_cli("repo", "web", str(copy), *site["where"], env=env, check=True)
    assert os.readlink(copy / "web").startswith(".sites/") and "index.html" in tree(copy / "web")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # `.sites` made a link out: refused, nothing written through it
    shutil.rmtree(copy / ".sites")
    (copy / ".sites").symlink_to(outside)
    proc = run_cli("repo", "web", str(copy), *site["where"], env=env)
    assert proc.returncode == 2 and ".sites: is not a directory pkgrepo made" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


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
        # so is hostile advisory text
        browser.get(server.url + "web/a/PKGREPO-2024-0001.html")
        assert browser.find_element(By.CSS_SELECTOR, "p.lead").text == ADVISORY["summary"]
        assert browser.execute_script("return window.pwned === undefined")
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


@pytest.mark.slow
def test_python3_page_in_the_browser(site: dict, browser, tmp_path: Path):
    """python3's page, the largest (thousands of files, a dozen dependencies), read in chromium
    and kept as a screenshot; python3 and its dependencies come from the user's build cache."""
    from selenium.webdriver.common.by import By

    out = tmp_path / "packages"
    out.mkdir()
    proc = build_cached(out, "python3")
    assert proc.returncode == 0, proc.stderr
    copy = tmp_path / "repo"
    shutil.copytree(site["repo"], copy, symlinks=True)
    files = [str(p) for p in sorted(out.glob("*.pkg.tar.zst"))]
    # the project's own advisories (the Debian feed's, filed under upstream projects) and VEX
    run_cli("publish", "--repo", str(copy), "--keys", str(site["keys"]), *files, check=True)
    server = PkgrepoServer(copy)
    try:
        browser.get(server.url + "web/p/python3.html")
        assert browser.find_element(By.TAG_NAME, "h1").text == "python3"
        linked = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.deps a")}
        assert {"musl", "zlib"} <= linked and len(linked) >= 5, linked  # its so: dependencies
        browser.find_element(By.PARTIAL_LINK_TEXT, "SBOM (SPDX")
        files = browser.find_element(By.LINK_TEXT, "The list of files").get_attribute("href")
        # the CVEs its patches fix link to the advisories that alias them
        fixed = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "main li a")}
        assert fixed.get("CVE-2024-0450", "").endswith("/web/a/DEBIAN-CVE-2024-0450.html"), fixed
        fixed = [href for href in fixed.values() if "/web/a/" in href]
        for href in fixed:
            with urllib.request.urlopen(href) as r:
                assert r.status == 200
        assert "verified: signed by key" in browser.find_element(By.CSS_SELECTOR, "p.provenance").text
        browser.save_screenshot(str(shots_dir() / "python3.png"))
        browser.get(files)  # its own page: thousands of rows
        rows = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.files td:first-child")]
        assert "/usr/bin/python3.11" in rows and len(rows) > 1000, len(rows)
    finally:
        assert server.stop() in (0, -15)
