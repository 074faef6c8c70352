"""A signed repository as a build cache (`RepositoryCache`), published with the real
`pkgrepo publish` and served by the real `pkgrepo serve`, whose provenance targets a hostile
publisher wrote: the build whose key they name is taken whole or not at all, and no
provenance, however malformed, ends the lookup in anything but a miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from pkgrepo.attest import dsse
from pkgrepo.attest.provenance import Provenance, Resource
from pkgrepo.builder.cache import RepositoryCache, check_hit
from pkgrepo.digest import sha256_file
from pkgrepo.safeio import EVIDENCE_BYTES
from tests.helpers.archives import make_package
from tests.helpers.cli import run_cli
from tests.helpers.servers import PkgrepoServer

KEY = "b" * 64  # the build key both packages' provenance names


def _package(out: Path, name: str) -> Path:
    """A package of recipe hello (hello and its subpackage hello-doc are one build)."""
    return make_package(out, name, origin="hello")


def _statement(pkg: Path, key: str = KEY, epoch: str = "1700000000") -> bytes:
    subject = Resource(pkg.name, sha256=sha256_file(pkg))
    prov = Provenance((subject,), "hello.yaml", "0" * 64, (), key, 1_700_000_000)
    return prov.to_bytes().replace(b'"sourceDateEpoch":1700000000', f'"sourceDateEpoch":{epoch}'.encode())


SPOILS = {
    "missing": None,
    "not-json": lambda signer, pkg: b"{not json",
    "deep": lambda signer, pkg: b"[" * 100_000 + b"]" * 100_000,
    "infinite-epoch": lambda signer, pkg: dsse.sign(_statement(pkg, epoch="1e999"), signer),
    "another-key": lambda signer, pkg: dsse.sign(_statement(pkg, key="c" * 64), signer),
    "huge": lambda signer, pkg: b" " * (EVIDENCE_BYTES + 1),
    "not-a-statement": lambda signer, pkg: dsse.sign(json.dumps({"subject": ["x"]}).encode(), signer),
}


def _lookup(tmp_path: Path, spoil: str | None, sbom: bytes | None = None) -> list[Path] | None:
    """hello and hello-doc published with provenance naming KEY (hello's spoilt as `spoil`
    says, and `sbom` its SPDX sidecar when given), looked up through the served repository; a
    hit is checked as the builder checks it."""
    pkgs, into = tmp_path / "pkgs", tmp_path / "into"
    pkgs.mkdir()
    into.mkdir()
    signer = CryptoSigner.generate_ed25519()
    (pkgs / "provenance.pub").write_bytes(dsse.public_key_bytes(signer.public_key))
    hello, doc = _package(pkgs, "hello"), _package(pkgs, "hello-doc")
    for pkg in (hello, doc):
        sidecar = pkg.with_name(pkg.name + ".intoto.json")
        if pkg == doc or spoil is None:
            sidecar.write_bytes(dsse.sign(_statement(pkg), signer))
        elif SPOILS[spoil] is not None:
            sidecar.write_bytes(SPOILS[spoil](signer, pkg))
    if sbom is not None:
        hello.with_name(hello.name + ".spdx.json").write_bytes(sbom)
    repo, trust = tmp_path / "repo", tmp_path / "root.json"
    env = {"PKGREPO_KEYS": str(tmp_path / "keys")}
    run_cli("repo", "init", str(repo), "--export-root", str(trust), env=env, check=True)
    run_cli("publish", "--repo", str(repo), "--no-web", str(hello), str(doc), env=env, check=True)
    server = PkgrepoServer(repo)
    try:
        cache = RepositoryCache(server.url, trust)
        files = cache.get("hello", KEY, into)
        if files is not None:
            check_hit(cache, "hello", KEY, files)
        return files
    finally:
        server.stop()


def test_a_whole_build_is_a_hit(tmp_path: Path, monkeypatch):
    """The control: both packages of the build are taken, with provenance that checks."""
    monkeypatch.setenv("PKGREPO_CACHE", str(tmp_path / "client"))
    files = _lookup(tmp_path, None)
    assert files is not None
    names = sorted(f.name for f in files if f.name.endswith(".pkg.tar.zst"))
    assert names == ["hello-1.0-r1.x86_64.pkg.tar.zst", "hello-doc-1.0-r1.x86_64.pkg.tar.zst"]


@pytest.mark.parametrize("spoil", sorted(SPOILS))
def test_a_build_with_one_package_not_proven_is_a_miss(tmp_path: Path, monkeypatch, spoil: str):
    """hello's provenance missing, malformed or naming another key while hello-doc's names
    the key: a miss (the build rebuilt), not hello-doc alone, and no traceback."""
    monkeypatch.setenv("PKGREPO_CACHE", str(tmp_path / "client"))
    files = _lookup(tmp_path, spoil)
    assert files is None, sorted(f.name for f in files)


def test_a_provenance_signed_over_the_bound_is_not_downloaded(tmp_path: Path, monkeypatch):
    """A provenance target whose signed length is over the evidence bound is refused from its
    signed length: nothing of it reaches the client's cache (it was downloaded whole, then
    refused)."""
    monkeypatch.setenv("PKGREPO_CACHE", str(tmp_path / "client"))
    assert _lookup(tmp_path, "huge") is None
    kept = [p for p in (tmp_path / "client").rglob("*") if p.is_file() and p.stat().st_size > EVIDENCE_BYTES]
    assert kept == []


def test_an_sbom_signed_over_the_bound_is_not_downloaded(tmp_path: Path, monkeypatch):
    """The same for an SBOM sidecar of a hit: a miss from its signed length, nothing of it in the
    client's cache (it was downloaded whole, then refused as not the package's SBOM)."""
    monkeypatch.setenv("PKGREPO_CACHE", str(tmp_path / "client"))
    assert _lookup(tmp_path, None, sbom=b" " * (EVIDENCE_BYTES + 1)) is None
    kept = [p for p in (tmp_path / "client").rglob("*") if p.is_file() and p.stat().st_size > EVIDENCE_BYTES]
    assert kept == []
