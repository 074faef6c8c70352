"""The package set: OpenSSL, CA certificates, tzdata, tcc, CPython 3.11 and Python libraries.

Every recipe is built once per session into conftest's `built` directory (so
musl, zlib and busybox are not rebuilt), one `pkgrepo build` per recipe in
dependency order, each timed; `pkgrepo build` runs the recipe's own `test:`
block. The tests below then install closures into fresh roots and run real work
inside them with that root as `/` (bubblewrap, no network, nothing of the host).
"""

from __future__ import annotations

import bz2
import json
import shutil
import tempfile
import time
import weakref
from pathlib import Path

import pytest

from pkgrepo.builder.sandbox import give_to_build_user, run_in_root
from pkgrepo.package.archive import read_head
from pkgrepo.package.extract import check_package
from pkgrepo.package.rootfs import install
from pkgrepo.resolve.native import closure
from tests.helpers.cli import build_cached

pytestmark = pytest.mark.slow

# Dependency order: each build finds its build-depends already in the directory.
RECIPES = [
    "dash",  # the shell of the bzip2 root (busybox's applets clash with bzip2-utils)
    "xz",
    "sqlite",
    "openssl",
    "libffi",
    "expat",
    "bzip2",
    "ca-certificates",
    "tzdata",
    "tcc",
    "python3",
    "py3-urllib3",
    "py3-zstandard",
]


@pytest.fixture(scope="session")
def packageset(built: Path) -> dict[str, dict]:
    """Build every recipe of the set once; {name: {"ok", "seconds", "error"}}."""
    results: dict[str, dict] = {}
    for name in RECIPES:
        start = time.monotonic()
        proc = build_cached(built, name)
        results[name] = {
            "ok": proc.returncode == 0,
            "seconds": round(time.monotonic() - start, 1),
            "error": proc.stderr.strip()[-2000:],
        }
    (built / "packageset-times.json").write_text(json.dumps(results, indent=2))
    return results


@pytest.fixture(scope="session")
def out(built: Path, packageset: dict[str, dict]) -> Path:
    return built


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_builds_and_passes_its_test(packageset, name):
    r = packageset[name]
    assert r["ok"], f"pkgrepo build {name} failed after {r['seconds']}s:\n{r['error']}"


class Root:
    """A fresh root with the closure of some packages installed."""

    def __init__(self, packages: Path, tmp: Path, names: list[str]):
        # Outside pytest's private (0700) tree: the sandbox runs as the build user, as for a recipe's test.
        self.path = Path(tempfile.mkdtemp(prefix="pkgrepo-test-root-"))
        weakref.finalize(self, shutil.rmtree, self.path, True)
        self.log = tmp / "root.log"
        self.log.write_text("")
        needed = closure(packages, names)
        self.names = sorted(p.name for p in needed)
        install([check_package(Path(p.location)) for p in needed], self.path)
        give_to_build_user(self.path)

    def run(self, script: str) -> str:
        rc = run_in_root(self.path, script, self.log, timeout=600)
        text = self.log.read_text()
        assert rc == 0, f"exit {rc} in root {self.names}:\n{text[-4000:]}"
        return text


def need(packageset: dict[str, dict], *names: str) -> None:
    failed = [n for n in names if not packageset[n]["ok"]]
    if failed:
        pytest.fail(
            f"recipe(s) {', '.join(failed)} did not build; see test_recipe_builds_and_passes_its_test"
        )


HTTPS = r"""
cd /tmp
# a CA, and a server certificate it signs for 127.0.0.1, made with our openssl command
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj /CN=pkgrepo-test-ca -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out srv.pem
cat > server.py <<'PY'
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello over TLS " + self.request.version().encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("srv.pem", "srv.key")
srv = http.server.HTTPServer(("127.0.0.1", 8443), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open("ready", "w").close()
srv.serve_forever()
PY
python3 server.py &
while [ ! -e ready ]; do sleep 0.1; done
python3 - <<'PY'
import ssl, urllib.request
ctx = ssl.create_default_context(cafile="ca.pem")
body = urllib.request.urlopen("https://127.0.0.1:8443/", context=ctx, timeout=20).read()
assert body.startswith(b"hello over TLS TLSv1.3"), body
print("handshake ok:", body.decode())
# the same server is refused against the public roots (the generated CA is not among them)
try:
    urllib.request.urlopen("https://127.0.0.1:8443/", context=ssl.create_default_context(), timeout=20)
except urllib.error.URLError as e:
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.reason), e
    print("untrusted chain refused")
else:
    raise SystemExit("a certificate from an unknown CA was accepted")
PY
kill %1
"""


def test_https_handshake_between_two_python_processes(out, packageset, tmp_path):
    need(packageset, "python3", "openssl", "ca-certificates")
    root = Root(out, tmp_path, ["python3", "openssl", "ca-certificates", "busybox"])
    text = root.run(HTTPS)
    assert "handshake ok: hello over TLS TLSv1.3" in text
    assert "untrusted chain refused" in text


STDLIB = r"""
python3 - <<'PY'
import bz2, ctypes, decimal, hashlib, json, lzma, pyexpat, sqlite3, ssl, zlib
data = json.dumps({"n": list(range(5000))}).encode()
assert hashlib.sha256(b"abc").hexdigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
assert hashlib.sha3_256(data).digest() == hashlib.new("sha3_256", data).digest()
assert lzma.decompress(lzma.compress(data, preset=9)) == data
assert bz2.decompress(bz2.compress(data, 9)) == data
assert zlib.decompress(zlib.compress(data, 9)) == data
db = sqlite3.connect("/tmp/t.db")
db.execute("create table t (k text primary key, v integer)")
db.executemany("insert into t values (?, ?)", [(f"k{i}", i) for i in range(1000)])
assert db.execute("select count(*), sum(v) from t where v % 2 = 0").fetchone() == (500, 249500)
assert db.execute("select json_extract('{\"a\": [1, 2]}', '$.a[1]')").fetchone() == (2,)
decimal.getcontext().prec = 50
assert str(decimal.Decimal(1) / decimal.Decimal(7))[:12] == "0.1428571428"
libc = ctypes.CDLL(None)
libc.strlen.argtypes = [ctypes.c_char_p]
assert libc.strlen(b"musl") == 4
seen = []
p = pyexpat.ParserCreate()
p.StartElementHandler = lambda name, attrs: seen.append((name, attrs))
p.Parse(b"<r><item id='1'/><item id='2'/></r>", True)
assert seen == [("r", {}), ("item", {"id": "1"}), ("item", {"id": "2"})]
print("stdlib ok", ssl.OPENSSL_VERSION)
PY
"""


def test_stdlib_modules_do_real_work(out, packageset, tmp_path):
    need(packageset, "python3")
    text = Root(out, tmp_path, ["python3", "busybox"]).run(STDLIB)
    assert "stdlib ok OpenSSL 3.0.22" in text


def test_openssl_version(out, packageset, tmp_path):
    need(packageset, "openssl")
    root = Root(out, tmp_path, ["openssl", "busybox"])
    assert "OpenSSL 3.0.22" in root.run("openssl version")
    # the runtime packages carry no static libraries, headers or manual pages
    for pkg in ("openssl", "libssl3", "libcrypto3"):
        _info, manifest = read_head(next(out.glob(f"{pkg}-3.0.22-r*.pkg.tar.zst")))
        paths = [e.path for e in manifest]
        assert not [p for p in paths if p.endswith(".a") or "/include/" in p or "/man/" in p], pkg


def test_ca_bundle(out, packageset, tmp_path):
    need(packageset, "ca-certificates", "python3")
    root = Root(out, tmp_path, ["ca-certificates", "python3", "openssl", "busybox"])
    text = root.run(r"""
test "$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)" = 150
python3 -c 'import ssl; c = ssl.create_default_context(); print("default roots:", len(c.get_ca_certs()))'
openssl verify -CApath /etc/ssl/certs /usr/share/ca-certificates/mozilla/DigiCert_Global_Root_G2.crt
""")
    assert "default roots: 150" in text
    assert "DigiCert_Global_Root_G2.crt: OK" in text


def test_bzip2_utils_in_a_root_with_dash(out, packageset, tmp_path):
    """bzip2's commands clash with busybox's applets, so this root's shell is dash."""
    need(packageset, "bzip2")
    root = Root(out, tmp_path, ["bzip2-utils", "dash"])
    assert "busybox" not in root.names
    (root.path / "bin").mkdir(exist_ok=True)
    (root.path / "bin/sh").symlink_to("/usr/bin/dash")
    (root.path / "data").mkdir()
    give_to_build_user(root.path / "data")
    root.run(r"""
i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i + 1)); done > /data/n
bzip2 -k -9 /data/n
bzip2 -t /data/n.bz2
bzcat /data/n.bz2 > /data/n2
""")
    original = (root.path / "data/n").read_bytes()
    assert original.count(b"\n") == 20000
    assert (root.path / "data/n2").read_bytes() == original
    assert bz2.decompress((root.path / "data/n.bz2").read_bytes()) == original


def test_tzdata(out, packageset, tmp_path):
    need(packageset, "tzdata", "python3")
    root = Root(out, tmp_path, ["tzdata", "python3", "busybox"])
    text = root.run(r"""
echo "paris: $(TZ=Europe/Paris date -d @1700000000 '+%F %T %z %Z')"
python3 -c '
import datetime, zoneinfo
t = datetime.datetime(2023, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
print("zoneinfo:", t.utcoffset(), t.tzname())'
""")
    assert "paris: 2023-11-14 23:13:20 +0100 CET" in text
    assert "zoneinfo: 2:00:00 CEST" in text


def test_tcc_compiles_and_runs_c_in_a_dev_root(out, packageset, tmp_path):
    need(packageset, "tcc")
    root = Root(out, tmp_path, ["tcc", "busybox"])
    assert "musl-dev" in root.names
    text = root.run(r"""
cd /tmp
cat > fib.c <<'C'
#include <stdio.h>
#include <stdlib.h>
static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    printf("fib(%d) = %ld\n", n, fib(n));
    return 0;
}
C
tcc -O2 -Wall -o fib fib.c
./fib 30
tcc -run fib.c 20
""")
    assert "fib(30) = 832040" in text
    assert "fib(20) = 6765" in text


def test_venv(out, packageset, tmp_path):
    need(packageset, "python3")
    root = Root(out, tmp_path, ["python3", "python3-ensurepip", "busybox"])
    text = root.run(r"""
python3 -m venv --without-pip /tmp/bare && /tmp/bare/bin/python -c 'import sys; print("bare venv:", sys.prefix)'
python3 -m venv /tmp/v
/tmp/v/bin/pip --version
/tmp/v/bin/python -c 'import sys; assert sys.prefix != sys.base_prefix; print("venv ok")'
""")
    assert "bare venv: /tmp/bare" in text
    assert "pip 22.3.1" in text and "venv ok" in text


def test_python3_split(out, packageset):
    need(packageset, "python3")
    lib = "usr/lib/python3.11/"

    def paths(name: str) -> list[str]:
        return [e.path for e in read_head(next(out.glob(f"{name}-3.11.2-r*.pkg.tar.zst")))[1]]

    runtime = paths("python3")
    for unwanted in ("test/", "idlelib/", "tkinter/", "ensurepip/", "site-packages/pip/", "config-3.11"):
        assert not [p for p in runtime if p.startswith(lib + unwanted)], unwanted
    assert not [p for p in runtime if p.startswith("usr/include/")]
    assert any(p.startswith(lib + "site-packages/pip/") for p in paths("python3-pip"))
    assert "usr/include/python3.11/Python.h" in paths("python3-dev")
    assert any(p.startswith(lib + "test/") for p in paths("python3-tests"))
    assert any(p.startswith(lib + "ensurepip/_bundled/pip-") for p in paths("python3-ensurepip"))
    # bytecode at the default optimisation level only
    pycs = [p for p in runtime if p.endswith(".pyc")]
    assert len(pycs) > 500 and not [p for p in pycs if ".opt-" in p]


def test_python_libraries(out, packageset, tmp_path):
    need(packageset, "py3-urllib3", "py3-zstandard")
    info, manifest = read_head(next(out.glob("py3-zstandard-*.pkg.tar.zst")))
    exts = [e.path for e in manifest if e.path.endswith(".so")]
    assert exts and all(p.startswith("usr/lib/python3.11/site-packages/zstandard/") for p in exts)
    # the C extension's needs were found by the ELF scan
    assert "so:libc.musl-x86_64.so.1" in info.depends and "python3" in info.depends
    root = Root(out, tmp_path, ["py3-zstandard", "py3-urllib3", "busybox"])
    text = root.run(r"""
python3 -c '
import urllib3, zstandard
print("libs:", urllib3.__version__, zstandard.__version__, zstandard.backend)'
""")
    assert "libs: 2.8.0 0.23.0 cext" in text


def test_python3_closure_size(out, packageset):
    need(packageset, "python3")
    pkgs = closure(out, ["python3"])
    sizes = {p.name: read_head(Path(p.location))[0].installed_size for p in pkgs}
    total = sum(sizes.values())
    (out / "python3-closure.json").write_text(json.dumps({"total": total, "packages": sizes}, indent=2))
    assert {"python3", "musl", "libssl3", "libcrypto3", "sqlite-libs"} <= set(sizes)
    assert "busybox" not in sizes and "python3-pip" not in sizes
    assert total < 80_000_000, sizes


def test_no_shell_in_the_python_runtime_closure(out, packageset, tmp_path):
    need(packageset, "python3")
    root = Root(out, tmp_path, ["python3"])
    assert not (root.path / "bin/sh").exists() and shutil.which("sh", path=str(root.path / "usr/bin")) is None
