"""Evidence, advisory and VEX files as an attacker writes them, through the real CLI.

Every hostile file (a FIFO, a symlink to /dev/zero or to a secret, a million nested
brackets, a wrong shape) ends in one line and exit 2, in bounded time and memory
(`prlimit --as`), and nothing outside the temporary tree changes. VEX suppresses only
the artefact it names: the whole purl is compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from pkgrepo.attest import dsse
from pkgrepo.attest.component import Component, Subject
from pkgrepo.attest.provenance import Provenance, Resource, content_subject
from pkgrepo.attest.spdx import spdx_document
from pkgrepo.digest import sha256_file
from tests.helpers.archives import make_package
from tests.helpers.cli import ROOT, TRACEBACK, run_cli

MEMORY = 1 << 30  # 1 GiB of address space: a read of /dev/zero or an expansion bomb dies well before
SECONDS = 60
ADVISORY = {
    "schema_version": "1.6.0",
    "id": "PKGREPO-TEST-1",
    "aliases": ["CVE-2099-0001"],
    "summary": "hello is affected",
    "database_specific": {"severity": "HIGH"},
    "affected": [
        {
            "package": {"ecosystem": "pkgrepo", "name": "hello"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
}
DEEP = b"[" * 1_000_000 + b"]" * 1_000_000


def openvex(*purls: str) -> dict:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://openvex.dev/docs/pkgrepo/test-1",
        "author": "an attacker",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2099-0001"},
                "status": "not_affected",
                "justification": "component_not_present",
                "products": [{"@id": p} for p in purls],
            }
        ],
    }


def hostile(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`pkgrepo ARGS` under a memory limit and a deadline; it must end in one line, exit 2."""
    argv = ["prlimit", f"--as={MEMORY}", "--", sys.executable, "-m", "pkgrepo", *args]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=SECONDS)
    assert TRACEBACK not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc


def tree(path: Path) -> dict[str, bytes | str]:
    """Everything under `path`: file bytes, link targets, directory markers."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(dirpath, name)
            rel = str(full.relative_to(path))
            if full.is_symlink():
                out[rel] = "-> " + os.readlink(full)
            elif full.is_dir():
                out[rel] = "dir"
            elif full.is_file():
                out[rel] = full.read_bytes()
            else:
                out[rel] = "special"
    return out


@pytest.fixture
def world(tmp_path: Path):
    """A hand-made SBOM of our x86_64 hello, an advisory for it, a canary directory beside them."""
    (tmp_path / "adv").mkdir()
    (tmp_path / "adv" / "hello.json").write_text(json.dumps(ADVISORY))
    (tmp_path / "vex").mkdir()
    hello = Component("hello", "2.10-r1", "GPL-3.0-or-later", "hello", "0" * 64, arch="x86_64")
    (tmp_path / "sbom.json").write_bytes(spdx_document(Subject("package", "hello", "2.10-r1", 0, (hello,))))
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("canary\n")
    os.symlink(canary / "secret", tmp_path / "link-to-secret")
    before = tree(canary)
    yield tmp_path
    assert tree(canary) == before


def scan(world: Path) -> subprocess.CompletedProcess:
    args = ("scan", str(world / "sbom.json"), "--advisories", str(world / "adv"), "--vex", str(world / "vex"))
    return run_cli(*args, "--json")


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:npm/pkgrepo/hello",
        "pkg:npm/pkgrepo/hello@2.10-r1",
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=aarch64",
        "pkg:generic/pkgrepo/hello?arch=aarch64",
        "pkg:generic/other/hello@2.10-r1?arch=x86_64",
        "pkg:generic/hello@2.10-r1?arch=x86_64",
        "pkg:generic/pkgrepo/hello@2.10-r2?arch=x86_64",
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=x86_64&distro=alpine",
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=x86_64#usr/bin/hello",
        "pkg:generic/pkgrepo/hello-utils@2.10-r1?arch=x86_64",
    ],
)
def test_vex_for_another_artefact_suppresses_nothing(world: Path, purl: str):
    (world / "vex" / "v.json").write_text(json.dumps(openvex(purl)))
    proc = scan(world)
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["package"], f["status"]) for f in findings] == [("hello", "affected")], proc.stdout


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=x86_64",
        "pkg:generic/pkgrepo/hello@2.10-r1",  # no arch: every architecture
        "pkg:generic/pkgrepo/hello",  # no version: every version
    ],
)
def test_vex_naming_our_package_suppresses_it(world: Path, purl: str):
    (world / "vex" / "v.json").write_text(json.dumps(openvex("pkg:npm/pkgrepo/hello", purl)))
    findings = json.loads(scan(world).stdout)["findings"]
    assert [(f["package"], f["status"]) for f in findings] == [("hello", "not_affected")]


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=aarch64&arch=x86_64",  # read as the last: x86_64
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=x86_64&arch=aarch64",
        "pkg:generic/pkgrepo/hello@2.10-r1?ARCH=aarch64&arch=x86_64",  # keys are case-insensitive
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=",  # read as no arch: every architecture
        "pkg:generic/pkgrepo/hello@2.10-r1?=aarch64",
        "pkg:generic/pkgrepo/hello@2.10-r1?arch=x86_64&",
    ],
)
def test_vex_with_an_ambiguous_purl_is_refused(world: Path, purl: str):
    """A purl that packageurl would read as ours (or as every architecture) by dropping or
    overriding a qualifier names no one artefact: the document is refused, naming the statement."""
    (world / "vex" / "v.json").write_text(json.dumps(openvex("pkg:npm/pkgrepo/hello", purl)))
    args = ("scan", str(world / "sbom.json"), "--advisories", str(world / "adv"), "--vex", str(world / "vex"))
    proc = hostile(*args, cwd=world)
    assert "v.json: statements[0].products[1]" in proc.stderr, proc.stderr


def _plant(where: Path, kind: str, world: Path) -> None:
    """A hostile file at `where`: a FIFO, a symlink to /dev/zero or to the canary, deep or wrong JSON."""
    if kind == "fifo":
        os.mkfifo(where)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", where)
    elif kind == "link-to-secret":
        os.symlink(world / "canary" / "secret", where)
    elif kind == "deep":
        where.write_bytes(DEEP)
    elif kind == "deep-object":
        where.write_bytes(b'{"a":' * 200 + b"1" + b"}" * 200)
    elif kind == "wrong-shape":
        where.write_text(json.dumps({"statements": "x", "id": [], "affected": {"a": 1}, "spdxVersion": 3}))
    else:
        raise AssertionError(kind)


KINDS = ["fifo", "dev-zero", "link-to-secret", "deep", "deep-object", "wrong-shape"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("what", ["advisory", "vex", "sbom"])
def test_hostile_advisory_vex_and_sbom_files_are_one_line(world: Path, what: str, kind: str):
    target = {
        "advisory": world / "adv" / "evil.json",
        "vex": world / "vex" / "evil.json",
        "sbom": world / "evil.spdx.json",
    }[what]
    _plant(target, kind, world)
    subject = target if what == "sbom" else world / "sbom.json"
    args = ("scan", str(subject), "--advisories", str(world / "adv"), "--vex", str(world / "vex"))
    proc = hostile(*args, cwd=world)
    assert "evil" in proc.stderr and "canary" not in proc.stderr, proc.stderr


def _signed(signer: CryptoSigner, payload: bytes) -> bytes:
    return dsse.sign(payload, signer)


@pytest.mark.parametrize(
    "kind",
    [*KINDS, "deep-payload", "wrong-payload", "deep-envelope-field", "infinite-epoch"],
)
def test_hostile_provenance_is_one_line(world: Path, kind: str):
    pkgs = world / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "hello")
    signer = CryptoSigner.generate_ed25519()
    pub = world / "provenance.pub"
    pub.write_bytes(dsse.public_key_bytes(signer.public_key))
    prov = pkgs / (pkg.name + ".intoto.json")
    if kind == "deep-payload":
        prov.write_bytes(_signed(signer, DEEP))
    elif kind == "wrong-payload":
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v1",
            "subject": [],
            "predicate": {"buildDefinition": {"buildType": "urn:pkgrepo:build-type:recipe:v1"}},
        }
        statement["predicate"]["buildDefinition"]["resolvedDependencies"] = ["x", 3]
        statement["predicate"]["buildDefinition"]["externalParameters"] = {
            "recipe": {"path": [], "digest": 1}
        }
        prov.write_bytes(_signed(signer, json.dumps(statement).encode()))
    elif kind == "infinite-epoch":  # JSON's 1e999 is a float infinity, which no int holds
        statement = Provenance((), "hello.yaml", "0" * 64, (), "k" * 64, 0).to_statement()
        text = json.dumps(statement).replace('"sourceDateEpoch": 0', '"sourceDateEpoch": 1e999')
        prov.write_bytes(_signed(signer, text.encode()))
    elif kind == "deep-envelope-field":
        env = json.loads(_signed(signer, b"{}"))
        env["signatures"] = json.loads(b"[" * 500 + b"]" * 500)
        prov.write_text(json.dumps(env))
    else:
        _plant(prov, kind, world)
    proc = hostile("verify", str(pkg), "--key", str(pub), cwd=world)
    assert pkg.name in proc.stderr or "intoto" in proc.stderr, proc.stderr
    assert "canary" not in proc.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "deep"])
def test_hostile_public_key_is_one_line(world: Path, kind: str):
    pkgs = world / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "hello")
    signer = CryptoSigner.generate_ed25519()
    (pkgs / (pkg.name + ".intoto.json")).write_bytes(_signed(signer, b"{}"))
    _plant(world / "evil.pub", kind, world)
    proc = hostile("verify", str(pkg), "--key", str(world / "evil.pub"), cwd=world)
    assert "evil.pub" in proc.stderr


def test_legit_provenance_envelope_still_reads(world: Path):
    """The control: a well-formed envelope signed by another key is refused for its signature,
    not for its shape (the reader does not refuse what it should read)."""
    pkgs = world / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "hello")
    signer, other = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    (world / "other.pub").write_bytes(dsse.public_key_bytes(other.public_key))
    (pkgs / (pkg.name + ".intoto.json")).write_bytes(_signed(signer, b"{}"))
    proc = run_cli("verify", str(pkg), "--key", str(world / "other.pub"), cwd=ROOT)
    assert proc.returncode == 2 and "signature does not verify" in proc.stderr, proc.stderr


def test_a_huge_package_beside_a_kept_roots_provenance_is_read_in_bounded_memory(world: Path):
    """A prod root that dropped a file is checked against the package file beside its
    provenance. That file, under the size limit but huge (a sparse 900 MiB), is hashed as it is
    read, not held whole: one line, exit 2, under 1 GiB of address space (not a MemoryError)."""
    pkgs = world / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "alpha", files={"usr/share/alpha/A": "a\n", "usr/share/alpha/B": "b\n"})
    spec = world / "alpha.yaml"
    spec.write_text("name: alpha\npackages: [alpha]\nexclude: [usr/share/alpha/B]\n")
    root = world / "root"
    build = ["image", "build", str(spec), "--packages", str(pkgs), "--profile", "prod", "--rootfs", str(root)]
    run_cli(*build, cwd=world, check=True)
    signer = CryptoSigner.generate_ed25519()
    pub = world / "provenance.pub"
    pub.write_bytes(dsse.public_key_bytes(signer.public_key))
    subjects = (  # the archive, and the whole content (which the root no longer has)
        Resource(pkg.name, sha256=sha256_file(pkg)),
        Resource(content_subject("alpha", "1.0-r1"), sha256="0" * 64),
    )
    prov = Provenance(subjects, "alpha.yaml", "0" * 64, (), "k" * 64, 0)
    (pkgs / (pkg.name + ".intoto.json")).write_bytes(_signed(signer, prov.to_bytes()))
    verify = ("verify", str(root), "--provenance", str(pkgs), "--key", str(pub))
    run_cli(*verify, cwd=world, check=True)  # the control: the kept file is the signed package's
    pkg.unlink()
    with open(pkg, "wb") as f:
        f.truncate(900 << 20)
    proc = hostile(*verify, cwd=world)
    assert "alpha: installed files differ" in proc.stderr, proc.stderr


@pytest.mark.parametrize("kept", [False, True], ids=["whole", "minimized"])
def test_a_directory_replaced_by_a_link_fails_verification(world: Path, kept: bool):
    """A root whose /usr/share/alpha was replaced by a link to a genuine copy elsewhere on the
    host (the container, resolving the link inside the root, would read planted files instead)
    does not verify, whole or minimized: the root's package database lists a file reached
    through a link, and is not trusted (the verifier never hashes the host's copy)."""
    from pkgrepo.attest.component import installed_digest
    from pkgrepo.package.rootfs import installed_in

    pkgs = world / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "alpha", files={"usr/share/alpha/A": "a\n", "usr/share/alpha/B": "b\n"})
    spec = world / "alpha.yaml"
    spec.write_text("name: alpha\npackages: [alpha]\n" + ("exclude: [usr/share/alpha/B]\n" if kept else ""))
    root = world / "root"
    build = ["image", "build", str(spec), "--packages", str(pkgs), "--profile", "prod", "--rootfs", str(root)]
    run_cli(*build, cwd=world, check=True)
    whole = installed_digest(root, installed_in(root)["alpha"].files) if not kept else "0" * 64
    signer = CryptoSigner.generate_ed25519()
    pub = world / "provenance.pub"
    pub.write_bytes(dsse.public_key_bytes(signer.public_key))
    subjects = (
        Resource(pkg.name, sha256=sha256_file(pkg)),
        Resource(content_subject("alpha", "1.0-r1"), sha256=whole),
    )
    prov = Provenance(subjects, "alpha.yaml", "0" * 64, (), "k" * 64, 0)
    (pkgs / (pkg.name + ".intoto.json")).write_bytes(_signed(signer, prov.to_bytes()))
    verify = ("verify", str(root), "--provenance", str(pkgs), "--key", str(pub))
    run_cli(*verify, cwd=world, check=True)  # the control: the root as installed verifies
    genuine = world / "genuine"
    (root / "usr/share/alpha").rename(genuine)
    (root / "usr/share/alpha").symlink_to(genuine)  # absolute: the host's copy, the root's planted one
    planted = root / str(genuine).lstrip("/")
    planted.mkdir(parents=True)
    (planted / "A").write_text("evil\n")
    proc = run_cli(*verify, cwd=world)
    assert proc.returncode != 0 and TRACEBACK not in proc.stderr, proc.stderr
    assert "lists /usr/share/alpha/A, which is reached through a link" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
