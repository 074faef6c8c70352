"""Supply-chain evidence end to end, on the real packages of the session fixture.

SBOMs are checked by spdx-tools' and cyclonedx-python-lib's own validators, provenance by
real DSSE/Ed25519 verification, and every forgery named in the issue is refused.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from pkgrepo.package.archive import iter_members, read_info
from pkgrepo.package.extract import own_sboms as sbom_paths
from tests.helpers.cli import RECIPES, run_cli
from tests.helpers.servers import PkgrepoServer

ZLIB = "zlib-1.3.2-r1.x86_64.pkg.tar.zst"
HELLO = "hello-2.12.3-r1.x86_64.pkg.tar.zst"
ADVISORY = {
    "schema_version": "1.6.0",
    "id": "PKGREPO-2024-0001",
    "aliases": ["CVE-2022-37434"],
    "summary": "zlib inflate heap overflow",
    "database_specific": {"severity": "CRITICAL"},
    "affected": [
        {
            "package": {"ecosystem": "pkgrepo", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.3.2-r2"}]}],
        }
    ],
}


def vex(justification: str | None) -> dict:
    statement = {
        "vulnerability": {"name": "CVE-2022-37434"},
        "status": "not_affected",
        "products": [
            {"@id": f"pkg:generic/pkgrepo/{n}@1.3.2-r1?arch=x86_64"} for n in ("zlib", "zlib-utils")
        ],
    }
    if justification:
        statement["justification"] = justification
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://openvex.dev/docs/pkgrepo/zlib-1",
        "author": "pkgrepo security",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": 1,
        "statements": [statement],
    }


def valid_spdx(path: Path) -> None:
    assert validate_full_spdx_document(parse_file(str(path))) == []


def valid_cdx(path: Path) -> None:
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(path.read_text()) is None


def install(packages: Path, root: Path, *names: str) -> None:
    run_cli("install", "--packages", str(packages), "--root", str(root), *names, check=True)


def test_package_sboms_beside_and_inside(built: Path):
    pkgs = sorted(built.glob("*.pkg.tar.zst"))
    assert pkgs
    for pkg in pkgs:
        spdx, cdx = pkg.with_name(pkg.name + ".spdx.json"), pkg.with_name(pkg.name + ".cdx.json")
        valid_spdx(spdx)
        valid_cdx(cdx)
        inside = {
            m.path: m.data
            for m in iter_members(pkg)
            if m.kind == "file" and m.path.startswith("var/lib/pkgrepo/sbom/")
        }
        name = read_info(pkg).name
        assert inside == {sbom_paths(name)[0]: spdx.read_bytes(), sbom_paths(name)[1]: cdx.read_bytes()}
    doc = json.loads((built / f"{ZLIB}.spdx.json").read_text())
    zlib = next(p for p in doc["packages"] if p["name"] == "zlib")
    assert zlib["versionInfo"] == "1.3.2-r1" and zlib["licenseDeclared"] == "Zlib"
    assert zlib["externalRefs"][0]["referenceLocator"] == "pkg:generic/pkgrepo/zlib@1.3.2-r1?arch=x86_64"
    source = next(p for p in doc["packages"] if p.get("primaryPackagePurpose") == "SOURCE")
    assert (
        source["checksums"][0]["checksumValue"]
        == "7b6903eb019983987b7112eccf90f1703f1c6c0e0cede36564bf611d19ca579d"
    )
    assert {
        "spdxElementId": zlib["SPDXID"],
        "relationshipType": "GENERATED_FROM",
        "relatedSpdxElement": source["SPDXID"],
    } in doc["relationships"]


def test_image_sbom_is_the_installed_set_and_deterministic(built: Path, tmp_path: Path):
    root = tmp_path / "base"
    install(built, root, "zlib-utils", "hello")
    installed = set(json.loads((root / "var/lib/pkgrepo/installed.json").read_text())["packages"])
    outs = {}
    for fmt in ("spdx", "cyclonedx"):
        a, b = tmp_path / f"a.{fmt}.json", tmp_path / f"b.{fmt}.json"
        run_cli("sbom", str(root), "--format", fmt, "-o", str(a), check=True)
        run_cli("sbom", str(root), "--format", fmt, "-o", str(b), check=True)
        assert a.read_bytes() == b.read_bytes()
        outs[fmt] = json.loads(a.read_text())
    valid_spdx(tmp_path / "a.spdx.json")
    valid_cdx(tmp_path / "a.cyclonedx.json")
    spdx = outs["spdx"]
    listed = {p["name"] for p in spdx["packages"] if p.get("primaryPackagePurpose") == "OPERATING_SYSTEM"}
    assert listed == installed
    image = next(p for p in spdx["packages"] if p.get("primaryPackagePurpose") == "CONTAINER")
    contains = {
        r["relatedSpdxElement"]
        for r in spdx["relationships"]
        if r["spdxElementId"] == image["SPDXID"] and r["relationshipType"] == "CONTAINS"
    }
    assert len(contains) == len(installed)
    assert {c["name"] for c in outs["cyclonedx"]["components"]} == installed


def test_verify_package_and_forgeries(built: Path, tmp_path: Path):
    key = built / "provenance.pub"
    ok = run_cli("verify", str(built / ZLIB), "--recipes", str(RECIPES), "--key", str(key))
    assert ok.returncode == 0, ok.stderr
    prov = (built / f"{ZLIB}.intoto.json").read_bytes()
    env = json.loads(prov)

    def refused(
        name: str, data: bytes, recipes: Path = RECIPES, pkg: str = ZLIB, key_file: Path = key
    ) -> str:
        d = tmp_path / name
        d.mkdir()
        (d / f"{pkg}.intoto.json").write_bytes(data)
        proc = run_cli(
            "verify",
            str(built / pkg),
            "--recipes",
            str(recipes),
            "--key",
            str(key_file),
            "--provenance",
            str(d),
        )
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip()
        return proc.stderr

    forged = dict(env, signatures=[dict(env["signatures"][0], sig=base64.b64encode(b"\0" * 64).decode())])
    assert "signature does not verify" in refused("forged", json.dumps(forged).encode())
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["recipe"]["path"] = "hello.yaml"
    edited = dict(env, payload=base64.b64encode(json.dumps(statement).encode()).decode())
    assert "signature does not verify" in refused("edited", json.dumps(edited).encode())
    assert "no subject has" in refused("swapped", (built / f"{HELLO}.intoto.json").read_bytes())
    other = tmp_path / "recipes"
    shutil.copytree(RECIPES, other)
    (other / "zlib.yaml").write_text((other / "zlib.yaml").read_text().replace("-O2 -pipe", "-O3 -pipe"))
    assert "has changed since the build" in refused("other-recipe", prov, recipes=other)
    assert "DSSE envelope is not JSON" in refused("truncated", prov[: len(prov) // 2])
    wrong = tmp_path / "wrong.pub"
    wrong.write_text(key.read_text().replace('"public":"', '"public":"00'))
    assert refused("wrong-key", prov, key_file=wrong)


def test_verify_over_the_served_repository(built: Path, tmp_path: Path):
    repo, trust = tmp_path / "repo", tmp_path / "root.json"
    run_cli(
        "repo", "init", str(repo), "--keys", str(tmp_path / "keys"), "--export-root", str(trust), check=True
    )
    run_cli(
        "publish",
        *map(str, sorted(built.glob("*.pkg.tar.zst"))),
        "--repo",
        str(repo),
        "--keys",
        str(tmp_path / "keys"),
        check=True,
    )
    server = PkgrepoServer(repo)
    try:
        env = {"PKGREPO_CACHE": str(tmp_path / "cache")}
        root = tmp_path / "root"
        run_cli(
            "install",
            "--repo",
            server.url,
            "--trust",
            str(trust),
            "--root",
            str(root),
            "zlib-utils",
            env=env,
            check=True,
        )
        proc = run_cli("verify", str(root), "--repo", server.url, "--recipes", str(RECIPES), env=env)
        assert proc.returncode == 0, proc.stderr
        (root / "usr/lib/libz.so.1.3.2").write_bytes(b"tampered")
        proc = run_cli("verify", str(root), "--repo", server.url, env=env)
        assert proc.returncode == 2 and "zlib: installed files differ" in proc.stderr
    finally:
        server.stop()


def test_advisory_vex_and_patch_to_image(built: Path, tmp_path: Path):
    recipes, out, images = tmp_path / "recipes", tmp_path / "packages", tmp_path / "images"
    recipes.mkdir()
    for name in ("musl", "zlib", "busybox"):
        shutil.copy(RECIPES / f"{name}.yaml", recipes)
        if (RECIPES / name).is_dir():  # the recipe's patches
            shutil.copytree(RECIPES / name, recipes / name)
    shutil.copytree(built, out)
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    run_cli("repo", "init", str(repo), "--keys", str(keys), check=True)
    packages = sorted(map(str, out.glob("*.pkg.tar.zst")))  # rollout installs from the repository
    run_cli("publish", *packages, "--repo", str(repo), "--keys", str(keys), check=True)
    adv, vexdir = tmp_path / "advisories", tmp_path / "vex"
    adv.mkdir()
    vexdir.mkdir()
    (adv / "PKGREPO-2024-0001.json").write_text(json.dumps(ADVISORY))
    install(out, images / "base", "zlib-utils")
    spec = tmp_path / "zimage.yaml"  # an OCI image of the same closure, rebuilt from its spec
    spec.write_text("name: zimage\npackages: [zlib-utils]\nentrypoint: [/usr/bin/minigzip]\n")
    run_cli("image", "build", str(spec), "--packages", str(out), "--out", str(images / "zimage"), check=True)
    layout_scan = [
        "scan",
        str(images / "zimage"),
        "--advisories",
        str(adv),
        "--fail-on",
        "low",
        "--allow-unknown",
    ]
    assert run_cli(*layout_scan).returncode == 1
    scan = [
        *("scan", str(images / "base"), "--advisories", str(adv), "--vex", str(vexdir)),
        *("--fail-on", "high", "--allow-unknown"),
    ]
    proc = run_cli(*scan)
    assert proc.returncode == 1 and "zlib 1.3.2-r1 (fixed in 1.3.2-r2)  affected" in proc.stdout
    affected = run_cli(
        "affected", "CVE-2022-37434", "--advisories", str(adv), "--packages", str(out), "--json"
    )
    assert {h["package"] for h in json.loads(affected.stdout)["affected"]} >= {
        "zlib",
        "zlib-utils",
        "zlib-dev",
    }

    (vexdir / "zlib.json").write_text(json.dumps(vex(None)))
    proc = run_cli(*scan)
    assert (
        proc.returncode == 2 and str(vexdir / "zlib.json") in proc.stderr and "justification" in proc.stderr
    )
    (vexdir / "zlib.json").write_text(json.dumps(vex("vulnerable_code_not_in_execute_path")))
    proc = run_cli(*scan)
    assert proc.returncode == 0, proc.stderr
    assert "not_affected  [vulnerable_code_not_in_execute_path]" in proc.stdout

    (recipes / "fix.patch").write_text("--- /dev/null\n+++ b/SECURITY-FIX\n@@ -0,0 +1 @@\n+CVE-2022-37434\n")
    text = (recipes / "zlib.yaml").read_text().replace("  release: 1\n", "  release: 2\n", 1)
    (recipes / "zlib.yaml").write_text(
        text.replace("\nbuild-depends:", "\npatches:\n  - file: fix.patch\n\nbuild-depends:")
    )
    proc = run_cli(
        "rollout",
        "zlib",
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--repo",
        str(repo),
        "--keys",
        str(keys),
        "--images",
        str(images),
        "--image-spec",
        str(spec),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    layout = {Path(i["path"]).name: i for i in report["images"]}["zimage"]
    assert layout["changed"] and layout["packages"]["zlib"] == "1.3.2-r2"
    proc = run_cli(*layout_scan)
    assert proc.returncode == 0 and "no open advisories for the" in proc.stdout, proc.stdout
    assert {
        p["name"]: p.get("versionInfo")
        for p in json.loads((images / "zimage.spdx.json").read_text())["packages"]
    }["zlib"] == "1.3.2-r2"
    assert report["rebuilt"] == ["zlib"] and "musl" in report["cached"]
    assert "packages/zlib-1.3.2-r2.x86_64.pkg.tar.zst.intoto.json" in report["published"]
    base = {Path(i["path"]).name: i for i in report["images"]}["base"]
    assert base["changed"] and base["packages"]["zlib"] == "1.3.2-r2"
    proc = run_cli(
        *("scan", str(images / "base"), "--advisories", str(adv), "--vex", str(vexdir)),
        *("--fail-on", "low", "--allow-unknown"),
    )
    assert proc.returncode == 0 and "no open advisories for the" in proc.stdout
    sbom = json.loads((images / "base.spdx.json").read_text())
    assert {p["name"]: p.get("versionInfo") for p in sbom["packages"]}["zlib"] == "1.3.2-r2"
    valid_spdx(images / "base.spdx.json")
    assert (
        run_cli(
            "verify",
            str(images / "base"),
            "--provenance",
            str(out),
            "--key",
            str(out / "provenance.pub"),
            "--recipes",
            str(recipes),
        ).returncode
        == 0
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{", "advisory is not JSON"),
        ('{"id": "X"}', "not an OSV advisory"),
        (
            '{"id": "X", "affected": [{"package": {"name": "zlib"}, "ranges": [{"type": "SEMVER", "events": []}]}]}',
            "is not ECOSYSTEM",
        ),
    ],
)
def test_malformed_advisory_refused(tmp_path: Path, text: str, expected: str):
    (tmp_path / "adv").mkdir()
    (tmp_path / "adv" / "bad.json").write_text(text)
    (tmp_path / "sbom.json").write_text("{}")
    proc = run_cli("scan", str(tmp_path / "sbom.json"), "--advisories", str(tmp_path / "adv"))
    assert proc.returncode == 2 and expected in proc.stderr and "bad.json" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[1", "SBOM is not JSON"),
        ('{"spdxVersion": "SPDX-2.3"}', "not a valid SPDX document"),
        ('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": 3}', "not a valid CycloneDX"),
        ('{"hello": 1}', "neither SPDX"),
    ],
)
def test_malformed_sbom_refused(tmp_path: Path, text: str, expected: str):
    (tmp_path / "adv").mkdir()
    (tmp_path / "s.json").write_text(text)
    proc = run_cli("scan", str(tmp_path / "s.json"), "--advisories", str(tmp_path / "adv"))
    assert proc.returncode == 2 and expected in proc.stderr and "s.json" in proc.stderr, proc.stderr


def test_malformed_vex_refused(tmp_path: Path):
    (tmp_path / "adv").mkdir()
    (tmp_path / "vex").mkdir()
    (tmp_path / "vex" / "v.json").write_text(json.dumps({**vex("component_not_present"), "author": 3}))
    (tmp_path / "s.json").write_text("{}")
    proc = run_cli(
        "scan",
        str(tmp_path / "s.json"),
        "--advisories",
        str(tmp_path / "adv"),
        "--vex",
        str(tmp_path / "vex"),
    )
    assert proc.returncode == 2 and "v.json: not a valid OpenVEX document at author" in proc.stderr, (
        proc.stderr
    )
