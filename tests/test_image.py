"""Image specs, builds, determinism, minimization, outputs under attack, and the audit's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.helpers.cli import ROOT, run_cli

EXAMPLES = ROOT / "repo-data" / "images"


def no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\npackages: [hello\n", ":3: YAML syntax error"),
        (
            "name: x\npackages: [hello]\ncolour: blue\n",
            ":3: colour: unknown field (see `pkgrepo schema image`)",
        ),
        ("name: x\npackages: [hello]\naccounts:\n  run-as: bob\n", ":4: accounts.run-as: unknown user 'bob'"),
        (
            "name: x\npackages: [hello]\npaths:\n  - path: /d\n    type: directory\n    mode: 0755\n",
            ":6: paths.0.mode: write the mode as a quoted octal string",
        ),
        (
            "name: x\npackages: [hello]\npaths:\n  - {path: /d, type: file, owner: carol}\n",
            ":4: paths.0.owner: unknown owner 'carol'",
        ),
        ("name: X Y\npackages: [hello]\n", ":1: name:"),
        (
            "name: x\npackages: ['!hello>=1']\n",
            ":2: packages: '!hello>=1': an exclusion is a bare package name",
        ),
        ("name: x\n", ":1: packages: required field is missing"),
        ("- a\n", ":1: an image spec is a YAML mapping"),
    ],
)
def test_bad_spec_is_one_line_at_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    spec = write_spec(tmp_path, text)
    proc = run_cli("image", "build", str(spec), "--out", str(tmp_path / "out"), "--packages", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    no_traceback(proc)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"{spec}{expected}" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_schema_image_lists_every_field() -> None:
    schema = json.loads(run_cli("schema", "image", check=True).stdout)
    assert {
        "name",
        "packages",
        "source",
        "accounts",
        "environment",
        "entrypoint",
        "cmd",
        "work-dir",
        "paths",
        "annotations",
        "keep",
        "exclude",
        "dev",
        "layers",
    } <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_examples_load(tmp_path: Path) -> None:
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        proc = run_cli(
            "image", "build", str(spec), "--packages", "/nonexistent-dir", "--out", str(tmp_path / "x")
        )
        assert proc.returncode == 2 and "packages directory does not exist" in proc.stderr, proc.stderr


def build(spec: Path, packages: Path, out: Path, *extra: str, cwd: Path | None = None, env=None):
    env = {**(env or {}), "PYTHONPATH": str(ROOT)}  # this checkout's pkgrepo, from any directory
    proc = run_cli(
        "image",
        "build",
        str(spec),
        "--packages",
        str(packages),
        "--out",
        str(out),
        "--json",
        *extra,
        cwd=cwd,
        env=env,
    )
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_same_spec_same_digest_in_different_dirs_at_different_times(
    image_packages: Path, tmp_path: Path
) -> None:
    spec = EXAMPLES / "hello.yaml"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = build(spec, image_packages, tmp_path / "a" / "layout", cwd=tmp_path / "a")
    time.sleep(1.1)
    second = build(
        spec, image_packages, tmp_path / "b" / "layout", cwd=tmp_path / "b", env={"TZ": "Asia/Tokyo"}
    )
    assert first["digest"] == second["digest"]
    assert first["size"] < 500_000, first["size"]
    index = json.loads((tmp_path / "a" / "layout" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == first["digest"]
    assert (tmp_path / "a" / "layout" / "oci-layout").is_file()
    assert run_cli("image", "audit", str(tmp_path / "a" / "layout")).returncode == 0


def test_config_base_files_and_installed_record(image_packages: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "name: tool\npackages: [hello]\nentrypoint: [/usr/bin/hello]\ncmd: [--greeting, hi]\n"
        "environment: {GREETING: hi}\nannotations: {org.opencontainers.image.revision: abc}\n",
    )
    build(spec, image_packages, tmp_path / "layout", "--rootfs", str(tmp_path / "root"))
    from pkgrepo.image.oci import read_layout

    image = read_layout(tmp_path / "layout")
    conf = image.config["config"]
    assert conf["User"] == "65532:65532" and conf["Entrypoint"] == ["/usr/bin/hello"]
    assert conf["Cmd"] == ["--greeting", "hi"] and "GREETING=hi" in conf["Env"]
    assert conf["Env"][0].startswith("PATH=")
    assert conf["Labels"]["org.opencontainers.image.revision"] == "abc"
    assert conf["Labels"]["org.opencontainers.image.title"] == "tool"
    root = tmp_path / "root"
    assert "nonroot:x:65532:65532:" in (root / "etc/passwd").read_text()
    assert all(line.split(":")[1] == "*" for line in (root / "etc/shadow").read_text().splitlines())
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (root / "home/nonroot").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/os-release").is_file() and (root / "etc/nsswitch.conf").is_file()
    db = json.loads((root / "var/lib/pkgrepo/installed.json").read_text())["packages"]
    assert sorted(db) == ["hello", "musl"] and db["hello"]["requested"]


def test_prod_minimization_report(image_packages: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "name: docs\npackages: [hello, hello-doc, zlib-dev]\nentrypoint: [/usr/bin/hello]\n"
    )
    proc = run_cli(
        "image",
        "build",
        str(spec),
        "--packages",
        str(image_packages),
        "--out",
        str(tmp_path / "l"),
        "--report",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "usr/share/man/" in out and "usr/include/zlib.h" in out and "libz.a" in out
    assert "unused shared library" in out and "minimization removed" in out
    saved = int(out.rsplit(", ", 1)[1].split()[0])
    assert saved > 0
    kept = write_spec(
        tmp_path, "name: docs\npackages: [hello, zlib-dev]\nkeep: ['/usr/lib/libz.so*']\n", "k.yaml"
    )
    data = build(kept, image_packages, tmp_path / "k")
    assert not any("libz.so" in r["path"] for r in data["minimized"]["removed"])


def test_dev_extends_prod_layers(image_packages: Path, tmp_path: Path) -> None:
    spec = EXAMPLES / "lua-app.yaml"
    prod = build(spec, image_packages, tmp_path / "prod")
    dev = build(spec, image_packages, tmp_path / "dev", "--profile", "dev")
    n = len(prod["layers"])
    assert [x["digest"] for x in dev["layers"][:n]] == [x["digest"] for x in prod["layers"]]
    assert len(dev["layers"]) > n and dev["base_digest"] == prod["digest"]
    assert run_cli("image", "audit", str(tmp_path / "prod")).returncode == 0
    proc = run_cli("image", "audit", str(tmp_path / "dev"), "--profile", "dev", "--json")
    assert proc.returncode == 0, proc.stdout
    assert {r["id"]: r["status"] for r in json.loads(proc.stdout)["rules"]}["no-shell"] == "skip"


def test_rootfs_dir_and_tar(image_packages: Path, tmp_path: Path) -> None:
    spec = EXAMPLES / "hello.yaml"
    run_cli("rootfs", str(spec), "--packages", str(image_packages), "--out", str(tmp_path / "r"), check=True)
    run_cli(
        "rootfs", str(spec), "--packages", str(image_packages), "--out", str(tmp_path / "r.tar"), check=True
    )
    assert (tmp_path / "r/usr/bin/hello").is_file()
    import tarfile

    with tarfile.open(tmp_path / "r.tar") as tar:
        names = tar.getnames()
        assert "usr/bin/hello" in names and names == sorted(names)
        assert {m.mtime for m in tar} == {max(m.mtime for m in tar)}
        assert tar.getmember("home/nonroot").uid == 65532
    proc = subprocess.run(["chroot", str(tmp_path / "r"), "/usr/bin/hello"], capture_output=True, text=True)
    assert proc.stdout == "Hello, world!\n"


def test_outputs_under_attack(image_packages: Path, tmp_path: Path) -> None:
    spec = EXAMPLES / "hello.yaml"
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "data").write_text("keep me")
    for out, why in (
        ("link", "is a symlink"),
        ("file", "not a directory"),
        ("busy", "not an OCI image layout"),
    ):
        proc = run_cli(
            "image", "build", str(spec), "--packages", str(image_packages), "--out", str(tmp_path / out)
        )
        assert proc.returncode == 2 and why in proc.stderr, proc.stderr
        no_traceback(proc)
    assert not any(victim.iterdir())
    assert (tmp_path / "file").read_text() == "keep me" and (
        tmp_path / "busy" / "data"
    ).read_text() == "keep me"
    args = [
        sys.executable,
        "-m",
        "pkgrepo",
        "image",
        "build",
        str(spec),
        "--packages",
        str(image_packages),
        "--out",
        str(tmp_path / "same"),
        "--json",
    ]
    procs = [
        subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    digests = set()
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err
        digests.add(json.loads(out)["digest"])
    assert len(digests) == 1
    assert json.loads((tmp_path / "same/index.json").read_text())["manifests"][0]["digest"] in digests
    assert sorted(os.listdir(tmp_path)) == ["busy", "file", "link", "same", "victim"]


def test_unknown_package_is_bad_input(image_packages: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "name: x\npackages: [no-such-thing]\n")
    proc = run_cli(
        "image", "build", str(spec), "--packages", str(image_packages), "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 2 and "no-such-thing: no such package" in proc.stderr
    assert not (tmp_path / "o").exists()


# a real key: the audit finds key material, not marker strings (a placeholder body passes)
KEY = (
    Ed25519PrivateKey.generate()
    .private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    .decode()
    .replace("\n", "\\n")
)


def _spec_bad(extra: str, packages: str = "[hello]"):
    return lambda tmp: ("spec", f"name: bad\npackages: {packages}\nentrypoint: [/usr/bin/hello]\n{extra}")


def _dir_bad(change):
    return lambda tmp: ("dir", change)


def _chmod(rel: str, mode: int):
    return lambda root: os.chmod(root / rel, mode)


def _write(rel: str, text: str):
    return lambda root: (root / rel).write_text(text)


BAD = {
    "no-shell": _spec_bad("paths:\n  - {path: /bin/sh, type: symlink, target: /usr/bin/hello}\n"),
    "no-package-manager": _spec_bad(
        "paths:\n  - {path: /usr/bin/apk, type: file, mode: '0755', content: x}\n"
    ),
    "non-root": _spec_bad("accounts:\n  run-as: root\n"),
    "no-setuid": _dir_bad(_chmod("usr/bin/hello", 0o4755)),
    "no-world-writable": _spec_bad(
        "paths:\n  - {path: /etc/app.conf, type: file, mode: '0666', content: x}\n"
    ),
    "locked-passwords": _dir_bad(_write("etc/shadow", "root::::::::\n")),
    "no-private-keys": _spec_bad(f'paths:\n  - {{path: /etc/key, type: file, content: "{KEY}"}}\n'),
    "owned-files": _dir_bad(_write("usr/bin/stray", "not from a package\n")),
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_audit_fails_a_bad_image_on_each_rule(image_packages: Path, tmp_path: Path, rule: str) -> None:
    kind, what = BAD[rule](tmp_path)
    if kind == "spec":
        target = tmp_path / "layout"
        build(write_spec(tmp_path, what), image_packages, target)
    else:
        target = tmp_path / "root"
        run_cli(
            "rootfs",
            str(EXAMPLES / "hello.yaml"),
            "--packages",
            str(image_packages),
            "--out",
            str(target),
            check=True,
        )
        assert run_cli("image", "audit", str(target)).returncode == 0
        what(target)
    proc = run_cli("image", "audit", str(target), "--json")
    no_traceback(proc)
    assert proc.returncode == 1, proc.stdout
    failed = [r["id"] for r in json.loads(proc.stdout)["rules"] if r["status"] == "fail"]
    assert failed == [rule]
    assert f"audit failed: {rule}" in proc.stderr
