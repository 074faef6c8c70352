"""The shared build cache: a directory (--cache-to / --cache-from DIR) and a signed repository (URL)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pkgrepo.paths import default_cache
from tests.helpers.cli import ROOT, run_cli
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


# --- a cache is a source of packages: a hit must be signed by a key trusted for that cache ----------


def _forged_hello(real: Path, into: Path) -> Path:
    """hello with a different usr/bin/hello: a consistent manifest, the recipe's origin and build key."""
    from dataclasses import replace

    from pkgrepo.package.archive import iter_members, read_head, scan_tree, write_package

    info, manifest = read_head(real)
    stage = into / ".forge"
    for m in iter_members(real):
        if m.path.startswith("."):
            continue  # .PKGINFO and .MANIFEST are written again
        p = stage / m.path
        if m.kind == "dir":
            p.mkdir(parents=True, exist_ok=True)
        elif m.kind == "symlink":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.symlink_to(m.linkpath)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"#!/bin/sh\necho pwned > /tmp/pwned\n" if m.path == "usr/bin/hello" else m.data)
            p.chmod(m.mode)
    forged = scan_tree(stage, [e.path for e in manifest])
    info = replace(info, installed_size=sum(e.size for e in forged))
    out = write_package(stage, forged, info, into / real.name)
    shutil.rmtree(stage)
    return out


def _forge_cache(cache: Path, bad: Path, hello: Path, sign_with=None, drop_provenance=False) -> None:
    """A copy of `cache` whose hello entry serves `hello` under its correct sha256."""
    shutil.copytree(cache, bad)
    digest = hashlib.sha256(hello.read_bytes()).hexdigest()
    shutil.copy(hello, bad / "blobs" / digest)
    for entry in (bad / "keys").glob("*.json"):
        data = json.loads(entry.read_text())
        if hello.name not in data["files"]:
            continue
        data["files"][hello.name] = digest
        prov = hello.name + ".intoto.json"
        if drop_provenance:
            del data["files"][prov]
        elif sign_with is not None:
            from pkgrepo.attest import dsse
            from pkgrepo.attest.provenance import Provenance, Resource

            real = json.loads((bad / "blobs" / data["files"][prov]).read_bytes())
            statement = json.loads(base64.b64decode(real["payload"]))
            old = Provenance.from_statement(Path(prov), statement)
            forged = Provenance(
                (Resource(hello.name, sha256=digest), *old.subjects[1:]),
                old.recipe_path,
                old.recipe_sha256,
                old.dependencies,
                old.build_key,
                old.source_date_epoch,
            )
            env = dsse.sign(forged.to_bytes(), sign_with)
            env_digest = hashlib.sha256(env).hexdigest()
            (bad / "blobs" / env_digest).write_bytes(env)
            data["files"][prov] = env_digest
        entry.write_text(json.dumps(data))


@pytest.fixture
def forged(cached, tmp_path: Path) -> Path:
    out, _cache = cached
    (tmp_path / "forge").mkdir()
    return _forged_hello(next(out.glob("hello-2*.pkg.tar.zst")), tmp_path / "forge")


def _refused(proc, fresh: Path, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert all(w in proc.stderr for w in words), proc.stderr
    assert not list(fresh.glob("hello-*")) and not (fresh / ".builds" / "hello.json").exists()


def test_forged_hello_under_its_own_sha256_is_refused(cached, forged: Path, built: Path, tmp_path: Path):
    """The attack of issue 16 class 5: the forged package's digests all agree, its provenance does not."""
    _out, cache = cached
    _forge_cache(cache, tmp_path / "bad", forged)
    fresh = _with_musl(built, tmp_path / "fresh")
    proc = _build(fresh, "--cache-from", str(tmp_path / "bad"))
    _refused(proc, fresh, forged.name, "not what its signed provenance attests")


def test_forged_hello_without_provenance_is_refused(cached, forged: Path, built: Path, tmp_path: Path):
    _out, cache = cached
    _forge_cache(cache, tmp_path / "bad", forged, drop_provenance=True)
    fresh = _with_musl(built, tmp_path / "fresh")
    _refused(_build(fresh, "--cache-from", str(tmp_path / "bad")), fresh, "no provenance", "trusted:")


def test_forged_hello_signed_by_the_forger_is_refused_unless_trusted(
    cached, forged: Path, built: Path, tmp_path: Path
):
    """Re-signed with the attacker's own key: refused naming the keys it lacks; taken only when the
    user names that key with --trust-cache-key (the option works, so the refusal is the key's)."""
    from securesystemslib.signer import CryptoSigner

    from pkgrepo.attest import dsse

    out, cache = cached
    forger = CryptoSigner.generate_ed25519()
    _forge_cache(cache, tmp_path / "bad", forged, sign_with=forger)
    own = dsse.load_public_key(out / "provenance.pub").keyid
    fresh = _with_musl(built, tmp_path / "fresh")
    proc = _build(fresh, "--cache-from", str(tmp_path / "bad"))
    _refused(proc, fresh, forger.public_key.keyid[:16], f"trusted: {own[:16]}", "--trust-cache-key")
    pub = tmp_path / "forger.pub"
    pub.write_bytes(dsse.public_key_bytes(forger.public_key))
    proc = _build(fresh, "--cache-from", str(tmp_path / "bad"), "--trust-cache-key", str(pub))
    assert proc.returncode == 0, proc.stderr
    assert _hello(fresh) == forged.read_bytes()  # what the user asked for by trusting that key


def test_someone_elses_cache_needs_their_key(cached, built: Path, tmp_path: Path):
    """A directory cache written by another user (here: another config home, so another own key) is
    refused; their key named by --trust-cache-key or listed in ~/.config/pkgrepo/cache-keys is taken."""
    out, cache = cached
    stranger = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    fresh = _with_musl(built, tmp_path / "fresh")
    _refused(_build(fresh, "--cache-from", str(cache), env=stranger), fresh, "not by a key trusted", "none")
    proc = _build(
        fresh, "--cache-from", str(cache), "--trust-cache-key", str(out / "provenance.pub"), env=stranger
    )
    assert proc.returncode == 0 and _hello(fresh) == _hello(out), proc.stderr
    listed = _with_musl(built, tmp_path / "listed")
    (tmp_path / "config" / "pkgrepo" / "cache-keys").mkdir(parents=True)
    shutil.copy(out / "provenance.pub", tmp_path / "config" / "pkgrepo" / "cache-keys" / "team.pub")
    proc = _build(listed, "--cache-from", str(cache), env=stranger)
    assert proc.returncode == 0 and _hello(listed) == _hello(out), proc.stderr


def test_forged_sbom_sidecar_is_refused(cached, built: Path, tmp_path: Path):
    """The package and its provenance are genuine, the unsigned SBOM beside it is not."""
    _out, cache = cached
    bad = tmp_path / "bad"
    shutil.copytree(cache, bad)
    lie = b'{"spdxVersion": "SPDX-2.3", "packages": []}'
    digest = hashlib.sha256(lie).hexdigest()
    (bad / "blobs" / digest).write_bytes(lie)
    for entry in (bad / "keys").glob("*.json"):
        data = json.loads(entry.read_text())
        for name in data["files"]:
            if name.startswith("hello-2") and name.endswith(".spdx.json"):
                data["files"][name] = digest
        entry.write_text(json.dumps(data))
    fresh = _with_musl(built, tmp_path / "fresh")
    _refused(_build(fresh, "--cache-from", str(bad)), fresh, "is not the SBOM the package holds")


def test_hostile_cache_entries_are_one_line(cached, built: Path, tmp_path: Path):
    """A FIFO, a symlink to /dev/zero and a deeply nested document as the entry: one line, exit 2,
    bounded time and memory."""
    _out, cache = cached
    for kind in ("fifo", "dev-zero", "deep"):
        bad = tmp_path / kind
        shutil.copytree(cache, bad)
        for entry in (bad / "keys").glob("*.json"):
            if json.loads(entry.read_text())["recipe"] != "hello":
                continue
            entry.unlink()
            if kind == "fifo":
                os.mkfifo(entry)
            elif kind == "dev-zero":
                entry.symlink_to("/dev/zero")
            else:
                entry.write_bytes(b"[" * 500_000 + b"]" * 500_000)
        fresh = _with_musl(built, tmp_path / f"fresh-{kind}")
        argv = ["prlimit", f"--as={1 << 30}", "--", sys.executable, "-m", "pkgrepo", "build", "hello"]
        argv += ["--out", str(fresh), "--no-test", "--cache-from", str(bad)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        _refused(proc, fresh, "build cache entry")


def _main_job_build(names: tuple[str, ...], out: Path) -> tuple[list[str], Path]:
    """scripts/main.sh's own build command and build cache, with `--all` narrowed to `names`."""
    script = (ROOT / "scripts" / "main.sh").read_text().splitlines()
    assign = next(line for line in script if line.startswith("CACHE="))
    cache = subprocess.run(["sh", "-c", f'{assign}; printf %s "$CACHE"'], capture_output=True, text=True)
    command = shlex.split(next(line.strip() for line in script if line.strip().startswith("$P build ")))
    args = []
    for a in command[2:]:
        if a == "--all":
            args += names
        elif a == "$CACHE":
            args.append(cache.stdout)
        elif not a.startswith(">"):
            args.append(a)
    return [*args, "--out", str(out)], Path(cache.stdout)


def test_the_main_job_and_the_fixtures_share_their_builds(built: Path, tmp_path: Path):
    """The main job builds through the user's build cache with the same keys as the fixtures
    (`tests.helpers.cli.build_cached`): its build command, on the fixtures' recipes after they
    were built, takes every one from the cache, so neither builds what the other did."""
    names = ("musl", "zlib", "hello", "busybox")
    args, cache = _main_job_build(names, tmp_path / "packages")
    assert cache == default_cache() / "builds"
    proc = run_cli("build", *args, check=True)
    builds = {b["name"]: b for b in json.loads(proc.stdout)["builds"]}
    assert sorted(builds) == sorted(names)
    assert [n for n, b in builds.items() if not b["cached"]] == [], "built again: the keys differ"
    for n in names:
        ours = json.loads((tmp_path / "packages" / ".builds" / f"{n}.json").read_text())["key"]
        assert ours == json.loads((built / ".builds" / f"{n}.json").read_text())["key"], n


def test_the_same_output_from_other_inputs_is_the_same_file(built: Path, tmp_path: Path):
    """The build key is in the signed provenance, not in the package: musl rebuilt from a recipe
    whose test block changed (another key) is the same file, and only its provenance names the
    new key; hello, built on it, keeps its key and is not rebuilt; publishing the rebuild where
    the first build is published leaves the package `unchanged` and replaces the provenance."""
    recipes = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", recipes)
    musl = recipes / "musl.yaml"
    block = "test:\n  environment: [busybox]\n  pipeline:\n"
    assert block in musl.read_text()
    musl.write_text(musl.read_text().replace(block, block + '    - runs: "true"\n'))
    out = tmp_path / "out"
    shutil.copytree(built, out)
    cache = default_cache() / "builds"  # a later session takes this musl from the cache: same file
    proc = run_cli(
        "build", "hello", "--recipes", str(recipes), "--out", str(out), "--no-test", "--json",
        "--cache-from", str(cache), "--cache-to", str(cache), check=True,
    )  # fmt: skip
    builds = {b["name"]: b for b in json.loads(proc.stdout)["builds"]}
    key = {
        d: json.loads((d / ".builds" / f"{n}.json").read_text())["key"]
        for d in (built, out)
        for n in ["musl"]
    }
    assert key[out] != key[built]
    names = sorted(p.name for p in built.glob("musl*.pkg.tar.zst"))
    assert names and all((out / n).read_bytes() == (built / n).read_bytes() for n in names)
    for n in names:
        envelope = json.loads((out / f"{n}.intoto.json").read_bytes())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == key[out]
    assert builds["hello"]["cached"]
    hello = json.loads((out / ".builds" / "hello.json").read_text())["key"]
    assert hello == json.loads((built / ".builds" / "hello.json").read_text())["key"]
    repo, env = tmp_path / "repo", {"PKGREPO_KEYS": str(tmp_path / "keys")}
    run_cli("repo", "init", str(repo), env=env, check=True)
    first = [str(built / n) for n in names]
    run_cli("publish", "--repo", str(repo), "--no-web", *first, env=env, check=True)
    again = run_cli("publish", "--repo", str(repo), "--no-web", *(str(out / n) for n in names), env=env)
    assert again.returncode == 0, again.stderr
    assert all(f"unchanged packages/{n}" in again.stdout for n in names), again.stdout
    assert all(f"published packages/{n}.intoto.json" in again.stdout for n in names), again.stdout
