"""The signed repository end to end: publish, serve (pkgrepo and nginx), install, and attacks.

Every attack runs the real server and the real client (python-tuf's ngclient
inside `pkgrepo install`), tampers with the served files as an attacker on the
mirror would, and checks that the client refuses with one line naming what
failed, that the root is exactly as it was, and that the legitimate update
afterwards succeeds.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

from tests.helpers.archives import HOSTILE_CASES, hostile, make_package
from tests.helpers.cli import run_cli
from tests.helpers.repos import Client, tree
from tests.helpers.servers import NginxServer, PkgrepoServer


class Setup:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.keys = tmp / "keys"
        self.pkgs = tmp / "pkgs"
        self.pkgs.mkdir()
        self.trust = tmp / "root.json"
        self.env = {"PKGREPO_KEYS": str(self.keys)}
        run_cli("repo", "init", str(self.repo), "--export-root", str(self.trust), env=self.env, check=True)

    def publish(self, *files: Path, extra: tuple[str, ...] = ()):
        return run_cli(
            "publish", "--repo", str(self.repo), *extra, *map(str, files), env=self.env, check=True
        )

    def meta(self, name: str) -> Path:
        return self.repo / "metadata" / name

    def current(self, role: str) -> Path:
        ts = json.loads(self.meta("timestamp.json").read_text())
        snap_v = ts["signed"]["meta"]["snapshot.json"]["version"]
        if role == "snapshot":
            return self.meta(f"{snap_v}.snapshot.json")
        snap = json.loads(self.meta(f"{snap_v}.snapshot.json").read_text())
        return self.meta(f"{snap['signed']['meta'][f'{role}.json']['version']}.{role}.json")

    def package_file(self, filename: str) -> Path:
        (path,) = (self.repo / "targets/packages").glob(f"*.{filename}")
        return path

    def index_file(self) -> Path:
        targets = json.loads(self.current("targets").read_text())
        digest = targets["signed"]["targets"]["index.jsonl"]["hashes"]["sha256"]
        return self.repo / "targets" / f"{digest}.index.jsonl"


@pytest.fixture
def setup(tmp_path: Path):
    s = Setup(tmp_path)
    lib = make_package(s.pkgs, "lib")
    app1 = make_package(s.pkgs, "app", "1.0", depends=("lib",))
    s.publish(lib, app1)
    s.server = PkgrepoServer(s.repo)
    s.client = Client(s.server.url, s.trust, tmp_path / "cache", tmp_path / "root")
    yield s
    assert s.server.stop() == 0


def refused(proc, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    lines = [x for x in proc.stderr.splitlines() if x.startswith("pkgrepo: error:")]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_install_upgrade_remove_keep_the_record_true(setup: Setup):
    c = setup.client
    assert c.install("app").returncode == 0
    assert (c.root / "usr/share/app/VERSION").read_text() == "app 1.0-r1\n"
    app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",), files={"usr/share/app/NEW": "two\n"})
    setup.publish(app2)
    proc = c.upgrade()
    assert proc.returncode == 0, proc.stderr
    assert "upgraded app 2.0-r1" in proc.stdout
    assert not (c.root / "usr/share/app/VERSION").exists()  # the old version's file went with it
    assert (c.root / "usr/share/app/NEW").read_text() == "two\n"
    record = json.loads((c.root / "var/lib/pkgrepo/installed.json").read_text())["packages"]
    assert (
        record["app"]["version"] == "2.0-r1" and record["app"]["requested"] and not record["lib"]["requested"]
    )
    assert record["app"]["files"] == ["usr/share/app/NEW"]
    refused(run_cli("remove", "--root", str(c.root), "lib"), "lib: needed by app")
    assert run_cli("remove", "--root", str(c.root), "app", "lib").returncode == 0
    assert not (c.root / "usr/share/app/NEW").exists()
    assert json.loads((c.root / "var/lib/pkgrepo/installed.json").read_text())["packages"] == {}


def test_search_and_info_read_the_verified_index(setup: Setup):
    proc = setup.client.run("search", "--repo", setup.server.url, "--trust", str(setup.trust), "ap")
    assert proc.stdout.strip() == "app 1.0-r1  the app package"
    proc = setup.client.run("info", "--repo", setup.server.url, "lib", "--json")
    (entry,) = json.loads(proc.stdout)["packages"]
    assert entry["name"] == "lib" and len(entry["sha256"]) == 64
    refused(setup.client.run("info", "--repo", setup.server.url, "ap"), "did you mean app")


def test_republishing_different_bytes_is_refused_unless_forced(setup: Setup):
    (setup.tmp / "other").mkdir()
    other = make_package(setup.tmp / "other", "app", "1.0", files={"usr/share/app/X": "different\n"})
    proc = run_cli("publish", "--repo", str(setup.repo), str(other), env=setup.env)
    refused(proc, "app 1.0-r1 is already published with different bytes")
    again = run_cli(
        "publish",
        "--repo",
        str(setup.repo),
        str(setup.pkgs / "app-1.0-r1.x86_64.pkg.tar.zst"),
        env=setup.env,
        check=True,
    )
    assert "unchanged packages/app-1.0-r1" in again.stdout
    setup.publish(other, extra=("--force",))
    assert setup.client.install("app").returncode == 0
    assert (setup.client.root / "usr/share/app/X").exists()


def test_first_use_needs_trust(setup: Setup):
    proc = run_cli(
        "install",
        "--repo",
        setup.server.url,
        "--root",
        str(setup.tmp / "r"),
        "app",
        env={"PKGREPO_CACHE": str(setup.tmp / "fresh")},
    )
    refused(proc, "first use of this repository needs --trust")


# --- attacks ----------------------------------------------------------------------------------


def attack(setup: Setup, tamper, restore, *words: str, establish: bool = True):
    """Install app 1 (trust established), tamper, try the update, check the refusal, restore, retry."""
    c = setup.client
    if establish:
        assert c.install("app").returncode == 0
    app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",))
    setup.publish(app2)
    before = tree(c.root)
    saved = tamper()
    proc = c.upgrade() if establish else c.install("app")
    refused(proc, *words)
    assert tree(c.root) == before
    restore(saved)
    proc = c.upgrade() if establish else c.install("app")
    assert proc.returncode == 0, proc.stderr
    assert (c.root / "usr/share/app/VERSION").read_text() == "app 2.0-r1\n"


def _swap(path: Path, data: bytes) -> bytes:
    old = path.read_bytes()
    path.write_bytes(data)
    return old


def test_tampered_package_bytes(setup: Setup):
    f = lambda: setup.package_file("app-2.0-r1.x86_64.pkg.tar.zst")  # noqa: E731
    attack(
        setup,
        lambda: _swap(f(), f().read_bytes()[:-10] + b"0123456789"),
        lambda old: f().write_bytes(old),
        "refused packages/app-2.0-r1.x86_64.pkg.tar.zst",
        "hash or length mismatch",
    )


def test_tampered_index(setup: Setup):
    def tamper():
        data = setup.index_file().read_bytes()
        return _swap(setup.index_file(), data.replace(b"the app package", b"the apq package"))

    attack(setup, tamper, lambda old: setup.index_file().write_bytes(old), "refused index.jsonl", "mismatch")


def test_package_swapped_for_an_older_signed_one(setup: Setup):
    new = lambda: setup.package_file("app-2.0-r1.x86_64.pkg.tar.zst")  # noqa: E731
    older = setup.package_file("app-1.0-r1.x86_64.pkg.tar.zst").read_bytes()
    attack(
        setup,
        lambda: _swap(new(), older),
        lambda old: new().write_bytes(old),
        "refused packages/app-2.0-r1",
        "mismatch",
    )


def test_metadata_signed_by_a_wrong_key(setup: Setup):
    def tamper():
        md = Metadata.from_bytes(setup.meta("timestamp.json").read_bytes())
        md.signed.version += 1
        md.signatures.clear()
        md.sign(CryptoSigner.generate_ed25519())  # the attacker's own key
        return _swap(setup.meta("timestamp.json"), md.to_bytes(JSONSerializer()))

    attack(
        setup, tamper, lambda old: setup.meta("timestamp.json").write_bytes(old), "bad signature", "timestamp"
    )


def test_rollback_of_timestamp(setup: Setup):
    c = setup.client
    old_ts = setup.meta("timestamp.json").read_bytes()  # what the attacker recorded earlier
    assert c.install("app").returncode == 0
    app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",))
    setup.publish(app2)
    assert c.upgrade().returncode == 0  # the client has now seen the newer timestamp
    before = tree(c.root)
    current = _swap(setup.meta("timestamp.json"), old_ts)
    refused(c.upgrade(), "rollback", "timestamp")
    assert tree(c.root) == before
    setup.meta("timestamp.json").write_bytes(current)
    assert c.upgrade().returncode == 0


@pytest.mark.parametrize("role", ["snapshot", "targets"])
def test_rollback_of_snapshot_or_targets(setup: Setup, role: str):
    # The attacker serves the previous version's content under the current file name.
    def tamper():
        cur = setup.current(role)
        previous = cur.with_name(f"{int(cur.name.split('.')[0]) - 1}.{role}.json").read_bytes()
        return cur, _swap(cur, previous)

    def restore(saved):
        saved[0].write_bytes(saved[1])

    attack(setup, tamper, restore, "rollback", role, establish=False)


def test_freeze_expired_timestamp(setup: Setup):
    c = setup.client
    assert c.install("app").returncode == 0
    app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",))
    setup.publish(app2, extra=("--expiry", "timestamp=2s"))
    time.sleep(3)  # the attacker keeps serving this timestamp after it expired
    before = tree(c.root)
    refused(c.upgrade(), "expired metadata", "timestamp")
    assert tree(c.root) == before
    run_cli("repo", "refresh", str(setup.repo), env=setup.env, check=True)
    assert c.upgrade().returncode == 0


def test_mix_and_match(setup: Setup):
    # The timestamp and snapshot of one publish, with the targets of a later one under the earlier name.
    c = setup.client
    setup.publish(make_package(setup.pkgs, "app", "2.0", depends=("lib",)))
    ts_a = setup.meta("timestamp.json").read_bytes()
    targets_a = setup.current("targets")
    setup.publish(make_package(setup.pkgs, "lib", "2.0"))
    targets_b = setup.current("targets").read_bytes()
    ts_b = setup.meta("timestamp.json").read_bytes()
    setup.meta("timestamp.json").write_bytes(ts_a)
    saved = _swap(targets_a, targets_b)
    refused(c.install("app"), "targets", "mix-and-match", "Expected targets v3, got v4")
    assert tree(c.root) == {}
    targets_a.write_bytes(saved)
    setup.meta("timestamp.json").write_bytes(ts_b)
    assert c.install("app").returncode == 0


def test_endless_data_metadata(setup: Setup):
    ts = setup.meta("timestamp.json")
    attack(
        setup,
        lambda: _swap(ts, ts.read_bytes() + b" " * 100_000),
        lambda old: ts.write_bytes(old),
        "timestamp",
        "too large",
    )


def test_endless_data_package(setup: Setup):
    f = lambda: setup.package_file("app-2.0-r1.x86_64.pkg.tar.zst")  # noqa: E731
    attack(
        setup,
        lambda: _swap(f(), f().read_bytes() + b"\0" * 5_000_000),
        lambda old: f().write_bytes(old),
        "packages/app-2.0-r1",
    )


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "root"])
def test_key_rotation_is_followed(setup: Setup, role: str):
    c = setup.client
    assert c.install("app").returncode == 0
    run_cli("repo", "rotate", str(setup.repo), "--role", role, env=setup.env, check=True)
    app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",))
    setup.publish(app2)
    proc = c.upgrade()
    assert proc.returncode == 0, proc.stderr
    assert (c.root / "usr/share/app/VERSION").read_text() == "app 2.0-r1\n"
    root2 = json.loads(setup.meta("2.root.json").read_text())
    assert root2["signed"]["version"] == 2
    # a client starting from the old trust anchor follows the chain as well
    fresh = Client(setup.server.url, setup.trust, setup.tmp / "cache2", setup.tmp / "root2")
    assert fresh.install("app").returncode == 0


@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_archive_with_valid_signature_is_refused(setup: Setup, case: str):
    members, expected = HOSTILE_CASES[case]
    (setup.tmp / "evil").mkdir()
    evil = hostile(setup.tmp / "evil" / "evil-1.0-r1.x86_64.pkg.tar.zst", members)
    setup.publish(evil)
    c = setup.client
    (c.root / "etc").mkdir(parents=True)
    (c.root / "etc/keep").write_text("keep")
    before = tree(c.root)
    refused(c.install("evil"), expected)
    assert tree(c.root) == before


# --- serving ----------------------------------------------------------------------------------


def test_nginx_serves_the_same_tree(setup: Setup, tmp_path: Path):
    nginx = NginxServer(setup.repo, tmp_path / "nginx")
    try:
        c = Client(nginx.url, setup.trust, tmp_path / "ncache", tmp_path / "nroot")
        proc = c.install("app")
        assert proc.returncode == 0, proc.stderr
        other = _install_via(setup, tmp_path)
        db = "var/lib/pkgrepo/installed.json"
        assert {k: v for k, v in tree(c.root).items() if k != db} == {
            k: v for k, v in tree(other).items() if k != db
        }
        versions = [
            {n: r["version"] for n, r in json.loads((r / db).read_text())["packages"].items()}
            for r in (c.root, other)
        ]
        assert versions[0] == versions[1] == {"app": "1.0-r1", "lib": "1.0-r1"}
        # a tampered package is refused through nginx just the same
        app2 = make_package(setup.pkgs, "app", "2.0", depends=("lib",))
        setup.publish(app2)
        pkg = setup.package_file("app-2.0-r1.x86_64.pkg.tar.zst")
        good = _swap(pkg, b"x" * pkg.stat().st_size)
        refused(c.upgrade(), "mismatch")
        pkg.write_bytes(good)
        assert c.upgrade().returncode == 0
    finally:
        nginx.stop()


def _install_via(setup: Setup, tmp_path: Path) -> Path:
    c = Client(setup.server.url, setup.trust, tmp_path / "pcache", tmp_path / "proot")
    assert c.install("app").returncode == 0
    return c.root


def test_http_details(setup: Setup):
    import urllib.error
    import urllib.request

    url = setup.server.url
    with urllib.request.urlopen(url + "metadata/timestamp.json") as r:
        body, etag = r.read(), r.headers["ETag"]
        assert r.headers["Content-Type"] == "application/json" and r.headers["Cache-Control"] == "no-cache"
    req = urllib.request.Request(url + "metadata/timestamp.json", headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 304
    req = urllib.request.Request(url + "metadata/timestamp.json", headers={"Range": "bytes=2-9"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 206 and r.read() == body[2:10]
        assert r.headers["Content-Range"] == f"bytes 2-9/{len(body)}"
    req = urllib.request.Request(url + "metadata/timestamp.json", headers={"Range": "bytes=-4"})
    with urllib.request.urlopen(req) as r:
        assert r.read() == body[-4:]
    req = urllib.request.Request(url + "metadata/timestamp.json", headers={"Range": f"bytes={len(body)}-"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 416
    req = urllib.request.Request(url + "metadata/timestamp.json", method="HEAD")
    with urllib.request.urlopen(req) as r:
        assert r.read() == b"" and int(r.headers["Content-Length"]) == len(body)
    pkg = next((setup.repo / "targets/packages").iterdir()).name
    with urllib.request.urlopen(url + f"targets/packages/{pkg}") as r:
        assert r.headers["Content-Type"] == "application/zstd" and "immutable" in r.headers["Cache-Control"]
    for bad in ("../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", ".lock", "metadata/", "metadata/../../x"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + bad)
        assert e.value.code == 404, bad
    (setup.repo / "escape").symlink_to("/etc")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "escape/hostname")
    assert e.value.code == 404
    req = urllib.request.Request(url + "metadata/timestamp.json", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 405
    shutil.rmtree(setup.client.root, ignore_errors=True)


def test_keys_live_outside_the_repository_with_private_modes(setup: Setup):
    key_dirs = list(setup.keys.iterdir())
    assert len(key_dirs) == 1 and key_dirs[0].stat().st_mode & 0o777 == 0o700
    keys = sorted(p.name for p in key_dirs[0].iterdir())
    assert keys == ["bins.pem", "root.pem", "snapshot.pem", "targets.pem", "timestamp.pem"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in key_dirs[0].iterdir())
    assert not any(p.suffix == ".pem" for p in setup.repo.rglob("*"))
    (key_dirs[0] / "timestamp.pem").chmod(0o644)
    proc = run_cli("repo", "refresh", str(setup.repo), env=setup.env)
    refused(proc, "timestamp.pem: signing key is readable by others")
    root = json.loads(setup.meta("1.root.json").read_text())["signed"]
    assert root["consistent_snapshot"] is True
    assert {r: v["threshold"] for r, v in root["roles"].items()} == dict.fromkeys(
        ("root", "snapshot", "targets", "timestamp"), 1
    )


def test_resolve_over_the_signed_repository(setup: Setup):
    proc = setup.client.run(
        "resolve", "--index", f"native:{setup.server.url}", "--trust", str(setup.trust), "--json", "app"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [p["name"] for p in data["packages"]] == ["app", "lib"] and data["optimal"] is True
    assert data["index"] == f"native:{setup.server.url}"
