"""The shared build cache: a directory (--cache-to / --cache-from DIR) and a signed repository (URL)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.servers import PkgrepoServer

pytestmark = pytest.mark.slow


def _with_musl(built: Path, out: Path) -> Path:
    """A packages directory holding only musl's build, as a local build left it."""
    (out / ".builds").mkdir(parents=True)
    shutil.copy(built / ".builds" / "musl.json", out / ".builds")
    for f in built.glob("musl*.pkg.tar.zst"):
        shutil.copy(f, out)
    return out


def _hello(out: Path) -> bytes:
    return next(out.glob("hello-2*.pkg.tar.zst")).read_bytes()


def _build(out: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("build", "hello", "--out", str(out), "--no-test", "--json", *args, env=env)


@pytest.fixture(scope="module")
def cached(built: Path, tmp_path_factory) -> tuple[Path, Path]:
    """hello rebuilt once with --cache-to: (the packages directory, the build cache)."""
    tmp = tmp_path_factory.mktemp("bc")
    out, cache = _with_musl(built, tmp / "out"), tmp / "cache"
    proc = _build(out, "--force", "--cache-to", str(cache))
    assert proc.returncode == 0, proc.stderr
    return out, cache


def test_directory_cache_hit_is_the_same_build(cached, built: Path, tmp_path: Path):
    out, cache = cached
    fresh = _with_musl(built, tmp_path / "fresh")
    proc = _build(fresh, "--cache-from", str(cache))
    assert proc.returncode == 0, proc.stderr
    result = {r["name"]: r for r in json.loads(proc.stdout)["builds"]}
    assert result["hello"]["cached"]
    assert _hello(fresh) == _hello(out)
    assert (fresh / (next(fresh.glob("hello-2*.pkg.tar.zst")).name + ".intoto.json")).is_file()
    # and the next plain run is a local no-op: the record came with it
    again = json.loads(_build(fresh).stdout)["builds"]
    assert all(r["cached"] for r in again)


def test_damaged_directory_cache_is_refused(cached, built: Path, tmp_path: Path):
    _out, cache = cached
    bad = tmp_path / "bad"
    shutil.copytree(cache, bad)
    for blob in (bad / "blobs").iterdir():
        blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    fresh = _with_musl(built, tmp_path / "fresh")
    proc = _build(fresh, "--cache-from", str(bad))
    assert proc.returncode == 2 and "does not match its sha256" in proc.stderr, proc.stderr
    assert not list(fresh.glob("hello-*"))


def test_cache_entry_naming_another_recipe_is_refused(cached, built: Path, tmp_path: Path):
    """A forged entry that serves musl's package under hello's key: refused, nothing taken."""
    _out, cache = cached
    bad = tmp_path / "forged"
    shutil.copytree(cache, bad)
    musl = next(built.glob("musl-1*.pkg.tar.zst"))
    digest = hashlib.sha256(musl.read_bytes()).hexdigest()
    shutil.copy(musl, bad / "blobs" / digest)
    for entry in (bad / "keys").glob("*.json"):
        entry.write_text(json.dumps({"recipe": "hello", "files": {musl.name: digest}}))
    fresh = _with_musl(built, tmp_path / "fresh")
    proc = _build(fresh, "--cache-from", str(bad))
    assert proc.returncode == 2 and "is not a package of hello" in proc.stderr, proc.stderr
    assert not list(fresh.glob("hello-*"))


def test_signed_repository_as_build_cache(cached, built: Path, tmp_path: Path):
    out, _cache = cached
    repo, keys, trust = tmp_path / "repo", tmp_path / "keys", tmp_path / "root.json"
    env = {"PKGREPO_KEYS": str(keys), "PKGREPO_CACHE": str(tmp_path / "client")}
    run_cli("repo", "init", str(repo), "--export-root", str(trust), env=env, check=True)
    run_cli("publish", "--repo", str(repo), *map(str, sorted(out.glob("*.pkg.tar.zst"))), env=env, check=True)
    server = PkgrepoServer(repo)
    try:
        fresh = _with_musl(built, tmp_path / "fresh")
        proc = _build(fresh, "--cache-from", server.url, "--trust", str(trust), env=env)
        assert proc.returncode == 0, proc.stderr
        assert {r["name"]: r["cached"] for r in json.loads(proc.stdout)["builds"]}["hello"]
        assert _hello(fresh) == _hello(out)
        # the served package altered: the verifying client refuses it, nothing is taken
        served = next((repo / "targets" / "packages").glob("*.hello-2.12.3-r1.x86_64.pkg.tar.zst"))
        served.write_bytes(served.read_bytes()[:-10] + b"0123456789")
        again = _with_musl(built, tmp_path / "again")
        proc = _build(
            again,
            "--cache-from",
            server.url,
            "--trust",
            str(trust),
            env={**env, "PKGREPO_CACHE": str(tmp_path / "client2")},
        )
        assert proc.returncode == 2 and "hash or length mismatch" in proc.stderr, proc.stderr
        assert not list(again.glob("hello-*"))
    finally:
        server.stop()
