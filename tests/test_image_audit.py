"""Each audit rule on hand-made layouts, through `pkgrepo image audit`: a true positive and a near miss.

The base image passes every rule; each case adds members (or changes the config)
and must fail exactly its rule (true positive) or still pass (near miss: looks
like a violation, is not one). No build is needed, so these run in seconds.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import py_compile
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.layouts import M, installed_db, write_layout

BASE = [
    M("etc/", "dir", mode=0o755),
    M("etc/passwd", data=b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/\n"),
    M("etc/shadow", data=b"root:*:19000::::::\nnonroot:!:19000::::::\n", mode=0o640),
    M("tmp/", "dir", mode=0o1777),
    M("usr/bin/hello", data=b"\x7fELF hello", mode=0o755),
]


def _pem(key, fmt=ser.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption())


def _keys() -> dict[str, bytes]:
    return {
        "rsa": _pem(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            ser.PrivateFormat.TraditionalOpenSSL,
        ),
        "ec": _pem(ec.generate_private_key(ec.SECP256R1())),
        "ed25519": _pem(ed25519.Ed25519PrivateKey.generate()),
        "openssh": _pem(ed25519.Ed25519PrivateKey.generate(), ser.PrivateFormat.OpenSSH),
    }


def _pyc(tmp: Path, source: str) -> bytes:
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "mod.py"
    src.write_text(source)
    return Path(py_compile.compile(str(src), cfile=str(tmp / "mod.pyc"), doraise=True)).read_bytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _audit(tmp: Path, extra: list[M], user: str = "65532:65532", owned: bool = True) -> dict[str, str]:
    """Audit BASE + `extra` (every file owned by a package unless `owned` is False); rule -> status."""
    return {r["id"]: r["status"] for r in _report(tmp, extra, user, owned)["rules"]}


def _report(tmp: Path, extra: list[M], user: str = "65532:65532", owned: bool = True) -> dict:
    files = [m.name.lstrip("./") for m in BASE + extra if m.kind not in ("dir",)]
    db = installed_db({"base": files if owned else [m.name for m in BASE if m.kind != "dir"]})
    members = [*BASE, *extra, M("var/lib/pkgrepo/installed.json", data=db)]
    layout = write_layout(tmp / "layout", [members], user=user)
    proc = run_cli("image", "audit", str(layout), "--json", timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert (proc.returncode == 1) == (not report["passed"])
    return report


def _failed(statuses: dict[str, str]) -> list[str]:
    return sorted(r for r, s in statuses.items() if s == "fail")


def test_the_base_image_passes_every_rule(tmp_path: Path):
    assert _failed(_audit(tmp_path, [])) == []


TRUE_POSITIVES = {
    "no-shell/through-a-link": [
        M("usr/libexec/sh", data=b"sh", mode=0o755),
        M("bin", "symlink", b"usr/libexec"),
    ],
    "no-shell/dotdot-name": [M("../bin/sh", data=b"sh", mode=0o755)],
    "no-shell/link-reaching-a-shell": [
        M("usr/libexec/bash", data=b"sh", mode=0o755),
        M("usr/bin/run", "symlink", b"/usr/libexec/bash"),
    ],
    "no-package-manager/local-bin": [M("usr/local/bin/pip3", data=b"#!/usr/bin/python3\n", mode=0o755)],
    "no-setuid/file": [M("usr/bin/su", data=b"\x7fELF", mode=0o4755)],
    # a runtime chmods a hard-link entry's path with the entry's mode: the shared file becomes setuid
    "no-setuid/hard-link-mode": [
        M("usr/bin/tool", data=b"\x7fELF", mode=0o755),
        M("usr/bin/tool2", "hardlink", b"usr/bin/tool", mode=0o4755),
    ],
    # /tmp is exempt only as the sticky directory itself: a file there reached by /etc/passwd is not
    "no-world-writable/reached-through-tmp": [
        M("tmp/passwd", data=b"root:x:0:0::/root:/sbin/nologin\n", mode=0o666),
        M("etc/passwd", "symlink", b"../tmp/passwd"),
    ],
    "no-world-writable/file": [M("etc/app.conf", data=b"x", mode=0o666)],
    "no-world-writable/tmp-not-sticky": [M("var/tmp/", "dir", mode=0o777)],
    "owned-files/fifo": [M("run/fifo", "fifo")],
}


@pytest.mark.parametrize("case", sorted(TRUE_POSITIVES))
def test_true_positive(tmp_path: Path, case: str):
    assert _failed(_audit(tmp_path, TRUE_POSITIVES[case])) == [case.split("/")[0]]


NEAR_MISSES = {
    "no-shell/named-like-a-shell-off-path": [M("usr/share/doc/sh", data=b"docs"), M("usr/lib/bash/", "dir")],
    "no-shell/similar-names-on-path": [
        M("usr/bin/shellcheck", data=b"x", mode=0o755),
        M("usr/bin/bashbug", data=b"x"),
    ],
    "no-package-manager/module-off-path": [M("usr/lib/python3.11/site-packages/pip/__init__.py", data=b"")],
    "no-setuid/setgid-directory": [M("var/mail/", "dir", mode=0o2775)],
    "no-world-writable/symlink-and-scratch": [
        M("etc/alias", "symlink", b"passwd"),
        M("var/tmp/", "dir", mode=0o1777),
        M("tmp/scratch", data=b"x", mode=0o644),
    ],
    "locked-passwords/not-the-account-files": [M("etc/shadow2", data=b"root::0:0::/:/bin/sh\n")],
    "owned-files/unowned-directory": [M("srv/data/", "dir")],
}


@pytest.mark.parametrize("case", sorted(NEAR_MISSES))
def test_near_miss(tmp_path: Path, case: str):
    assert _failed(_audit(tmp_path, NEAR_MISSES[case])) == []


def test_non_root(tmp_path: Path):
    cases = (("0:0", ["non-root"]), ("root", ["non-root"]), ("", ["non-root"]), ("1000:1000", []))
    for i, (user, failed) in enumerate(cases):
        (tmp_path / str(i)).mkdir()
        assert _failed(_audit(tmp_path / str(i), [], user=user)) == failed, user


def test_locked_passwords_as_the_links_resolve(tmp_path: Path):
    shadow = b"root:!$6$salt$hash:19000::::::\nnonroot:*:19000::::::\n"
    locked = [M("etc/shadow", "symlink", b"../usr/share/shadow"), M("usr/share/shadow", data=shadow)]
    (tmp_path / "a").mkdir()
    assert _failed(_audit(tmp_path / "a", locked)) == []
    usable = [
        M("etc/shadow", "symlink", b"/usr/share/shadow"),
        M("usr/share/shadow", data=b"root:$6$s$h:1::::::\n"),
    ]
    (tmp_path / "b").mkdir()
    assert _failed(_audit(tmp_path / "b", usable)) == ["locked-passwords"]


def test_owned_files_true_positive(tmp_path: Path):
    assert _failed(_audit(tmp_path, [M("usr/bin/stray", data=b"x")], owned=False)) == ["owned-files"]


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519", "openssh"])
def test_a_real_private_key_anywhere_fails(tmp_path: Path, kind: str):
    """One image carries the key in six places; each is reported (the package that owns it named)."""
    key = _keys()[kind]
    places = {
        "etc/ssl/private/server.key": key,
        "usr/lib/app/__pycache__/conf.cpython-311.pyc": _pyc(tmp_path, f"KEY = {key.decode()!r}\n"),
        "usr/lib/app/bundle.whl": _zip({"app/key.pem": key}),
        "usr/lib/app.zip": _zip({"inner.jar": _zip({"k": key})}),
        "etc/sa.json": json.dumps({"private_key": key.decode()}).encode(),
        "usr/share/blob": b"\0" * (3 << 20) + key + b"\0" * 1000,
    }
    report = _report(tmp_path, [M(p, data=d) for p, d in places.items()])
    rule = next(r for r in report["rules"] if r["id"] == "no-private-keys")
    assert [r["id"] for r in report["rules"] if r["status"] == "fail"] == ["no-private-keys"]
    reported = {f.split(" holds ")[0] for f in rule["findings"]}
    assert reported == {f"/{p}" for p in places}, rule["findings"]
    assert all("(from base)" in f for f in rule["findings"])


def _der(key, fmt, encryption=None) -> bytes:
    return key.private_bytes(ser.Encoding.DER, fmt, encryption or ser.NoEncryption())


def _tar_gz(name: str, data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_a_real_private_key_in_any_encoding_fails(tmp_path: Path):
    """Keys not in PEM: DER of each structure, base64 of DER without armour (alone, in JSON with
    escapes, in an environment file), UTF-16 text, and gzip, xz and bzip2 files; and a key behind
    more key-shaped structures than are loaded. Each place is reported once (a PKCS#8 key holds a
    PKCS#1 one; a PEM body is also base64 of DER)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pkcs1, pkcs8, legacy = (
        ser.PrivateFormat.TraditionalOpenSSL,
        ser.PrivateFormat.PKCS8,
        ser.PrivateFormat.PKCS8,
    )
    pem = _pem(rsa_key)
    places = {
        "etc/ssl/private/rsa.der": _der(rsa_key, pkcs1),
        "etc/ssl/private/rsa8.der": _der(rsa_key, pkcs8),
        "etc/ssl/private/ec.der": _der(ec_key, pkcs1),  # SEC1
        "etc/ssl/private/ed.p8": _der(ed_key, legacy),
        "etc/ssl/private/enc.p8": _der(ec_key, pkcs8, ser.BestAvailableEncryption(b"secret")),
        "usr/lib/app/blob.bin": b"\0" * ((1 << 20) - 100) + _der(rsa_key, pkcs8) + b"\0" * 4096,
        "etc/app/env": b"DEBUG=0\nKEY=" + base64.b64encode(_der(ec_key, pkcs8)) + b"\n",
        "etc/app/sa.json": json.dumps({"k": base64.encodebytes(_der(rsa_key, pkcs8)).decode()}).encode(),
        "etc/app/key.b64": base64.encodebytes(_der(ed_key, pkcs8)),
        "usr/share/app/key-le.txt": ("a key:\n" + pem.decode()).encode("utf-16-le"),
        "usr/share/app/key-be.txt": b"\xfe\xff" + ("x" + pem.decode()).encode("utf-16-be"),
        "usr/share/app/b64-le.txt": base64.b64encode(_der(ec_key, pkcs1)).decode().encode("utf-16-le"),
        "usr/share/app/keys.tar.gz": _tar_gz("key.pem", pem),
        "usr/share/app/key.der.xz": lzma.compress(b"\0" * (3 << 20) + _der(ed_key, pkcs8)),
        "usr/share/app/key.pem.bz2": bz2.compress(pem),
        "usr/lib/app/deps.zip": _zip({"conf/key.der": _der(ec_key, pkcs1)}),
        # a key hidden behind more key-shaped structures than are loaded: the file is reported
        "usr/lib/app/chaff.bin": b"\x30\x82\x27\xff\x02\x01\x00\x02" * 2000 + _der(ed_key, pkcs8),
    }
    report = _report(tmp_path, [M(p, data=d) for p, d in places.items()])
    assert [r["id"] for r in report["rules"] if r["status"] == "fail"] == ["no-private-keys"]
    findings = next(r for r in report["rules"] if r["id"] == "no-private-keys")["findings"]
    reported = [f.split(" holds ")[0] for f in findings]
    assert sorted(reported) == sorted(f"/{p}" for p in places), findings  # each once


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # a CA in the bundle has serial 0
def test_cpython_test_data_public_der_and_compressed_certificates_pass(tmp_path: Path):
    """What looks like key material but is none: CPython's own test data (every file of Lib/test
    that is not Python and holds no PEM private key: certificates in PEM and DER, archives, audio,
    images, decimal tests), certificates and public keys in DER and as base64 without armour, and
    the CA bundle in UTF-16 and gzip, xz and bzip2."""
    found = run_cli("fetch", "python3", check=True).stdout.split()[0]
    extra = []
    with tarfile.open(found) as tar:
        for m in tar:
            if not m.isfile() or "/Lib/test/" not in m.name or m.name.endswith(".py"):
                continue
            data = tar.extractfile(m).read()
            if b"PRIVATE KEY-----" not in data:  # keycert.pem and its kin hold real (test) keys
                extra.append(M("usr/lib/python3.11/test/" + m.name.split("/Lib/test/", 1)[1], data=data))
    assert len(extra) > 400, "CPython's test data is missing from the source"
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
    certs = x509.load_pem_x509_certificates(bundle)[:40]
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    extra += [M(f"usr/share/ca/{i}.der", data=c.public_bytes(ser.Encoding.DER)) for i, c in enumerate(certs)]
    extra += [
        M(
            "usr/share/ca/all.b64",
            data=b"\n".join(base64.b64encode(c.public_bytes(ser.Encoding.DER)) for c in certs),
        ),
        M(
            "usr/share/keys/pub.der",
            data=public.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo),
        ),
        M("usr/share/ca/bundle-utf16.txt", data=bundle.decode().encode("utf-16")),
        M("usr/share/ca/bundle.gz", data=gzip.compress(bundle)),
        M("usr/share/ca/bundle.xz", data=lzma.compress(bundle)),
        M("usr/share/ca/bundle.bz2", data=bz2.compress(bundle)),
    ]
    assert _failed(_audit(tmp_path, extra)) == []


def test_marker_strings_and_public_material_pass(tmp_path: Path):
    """pkgrepo's own package as the dev image carries it (every module and its bytecode, and main's
    audit of before, which carried the bare markers), the CA bundle, a placeholder block whose body
    is no key, and a public key."""
    old = subprocess.run(
        ["git", "show", "1a234fd:pkgrepo/image/audit.py"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    site = "usr/lib/python3.11/site-packages"
    extra = []
    for i, py in enumerate(sorted((ROOT / "pkgrepo").rglob("*.py"))):
        rel = py.relative_to(ROOT).as_posix()
        extra.append(M(f"{site}/{rel}", data=py.read_bytes()))
        extra.append(M(f"{site}/{rel[:-3]}.cpython-311.pyc", data=_pyc(tmp_path / f"p{i}", py.read_text())))
    extra += [
        M("etc/ssl/certs/ca-certificates.crt", data=Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()),
        M(
            "usr/share/doc/example.pem",
            data=b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n",
        ),
        M(
            "usr/share/doc/fake.pem",
            data=b"-----BEGIN PRIVATE KEY-----\n"
            + b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n" * 4
            + b"-----END PRIVATE KEY-----\n",
        ),
        M(
            "usr/share/doc/pub.pem",
            data=ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
        ),
    ]
    if old:
        extra.append(M(f"{site}/pkgrepo/image/__pycache__/audit-main.pyc", data=_pyc(tmp_path / "old", old)))
    assert _failed(_audit(tmp_path, extra)) == []


def _audit_env(
    tmp: Path, extra: list[M], env: list[str], profile: str = "prod", *args: str
) -> dict[str, str]:
    files = [m.name.lstrip("./") for m in BASE + extra if m.kind not in ("dir",)]
    members = [*BASE, *extra, M("var/lib/pkgrepo/installed.json", data=installed_db({"base": files}))]
    layout = write_layout(tmp / "layout", [members], profile=profile, env=env)
    proc = run_cli("image", "audit", str(layout), "--json", *args, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return {r["id"]: r["status"] for r in json.loads(proc.stdout)["rules"]}


@pytest.mark.parametrize(
    "env",
    [["PATH=/usr/bin:/bin", "PATH=/opt/x"], ["PATH=/usr/bin:"], ["PATH=.:/usr/bin"]],
    ids=["last-path-wins", "empty-element", "dot-element"],
)
def test_the_runtime_path_is_judged_as_a_runtime_merges_it(tmp_path: Path, env: list[str]):
    shell = M("opt/x/sh", data=b"sh", mode=0o755) if "/opt/x" in env[-1] else M("sh", data=b"sh", mode=0o755)
    assert _audit_env(tmp_path, [shell], env)["no-shell"] == "fail"
    # near miss: the same file where the runtime PATH does not reach
    other = tmp_path / "near"
    assert _audit_env(other, [M("opt/y/sh", data=b"sh", mode=0o755)], env)["no-shell"] == "pass"


def test_an_image_labelled_dev_gets_the_prod_rules_unless_asked(tmp_path: Path):
    shell = [M("bin/sh", data=b"sh", mode=0o755)]
    assert _audit_env(tmp_path / "a", shell, ["PATH=/usr/bin:/bin"], "dev")["no-shell"] == "fail"
    asked = _audit_env(tmp_path / "b", shell, ["PATH=/usr/bin:/bin"], "dev", "--profile", "dev")
    assert asked["no-shell"] == "skip"
