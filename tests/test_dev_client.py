"""The package manager inside dev images, and a Python app image (issue 10, items 3-4).

Real parts only: the client set built from its recipes (pkgrepo itself pinned by
scripts/pkgrepo-source.py from this checkout), a dev image's root filesystem run
as a container would run it (bwrap, the root as `/`, the host's loopback shared),
a signed repository served by `pkgrepo serve` on 127.0.0.1, and python-tuf's
client on our musl CPython with neither cryptography, pydantic nor PySAT.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pkgrepo.builder.sandbox import bwrap_argv
from tests.helpers.archives import make_package
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.repos import tree
from tests.helpers.servers import PkgrepoServer, free_port

pytestmark = pytest.mark.slow

APP = ROOT / "repo-data" / "images" / "python-app.yaml"


def in_root(
    root: Path, command: list[str], env: dict[str, str] | None = None, uid: int = 0, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`command` with `root` as `/`, as a container runtime would run it, the host's loopback shared."""
    argv = bwrap_argv(
        ["--bind", str(root), "/"],
        command,
        hostname="dev",
        cwd="/",
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C", **(env or {})},
    )
    i = argv.index("--unshare-all")
    argv[i + 1 : i + 1] = ["--share-net"]
    if uid:
        argv[argv.index("--uid") + 1] = argv[argv.index("--gid") + 1] = str(uid)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.fixture(scope="module")
def served(client_set: Path, tmp_path_factory):
    """A signed repository of hello (and musl), a package `victim` whose file is then damaged, and the dev root
    of an image whose spec names that repository (its URL and trusted root shipped in /etc/pkgrepo)."""
    work = tmp_path_factory.mktemp("devclient")
    repo, keys, trust = work / "repo", work / "keys", work / "root.json"
    run_cli("repo", "init", str(repo), "--keys", str(keys), "--export-root", str(trust), check=True)
    extra = make_package(work, "victim", files={"usr/share/victim/DATA": "original\n"})
    published = [next(client_set.glob(f"{n}-[0-9]*.pkg.tar.zst")) for n in ("hello", "musl")]
    run_cli("publish", *map(str, published), str(extra), "--repo", str(repo), "--keys", str(keys), check=True)
    for f in repo.rglob("*victim-*.pkg.tar.zst"):  # served bytes no longer match the signed hashes
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    server = PkgrepoServer(repo)
    try:
        spec = work / "dev.yaml"
        spec.write_text(
            f"name: devclient\npackages: [python3]\n"
            f"dev:\n  repository: {{name: main, url: '{server.url}', trust: root.json}}\n"
        )
        root = work / "rootfs"
        run_cli(
            "image",
            "build",
            str(spec),
            "--profile",
            "dev",
            "--packages",
            str(client_set),
            "--rootfs",
            str(root),
            check=True,
        )
        yield server, root
    finally:
        server.stop()


def test_dev_root_ships_the_client_and_its_trust(served) -> None:
    server, root = served
    assert (root / "usr/bin/pkgrepo").is_file() and (root / "bin/sh").exists()
    assert (root / "etc/pkgrepo/repositories").read_text().splitlines()[-1] == f"main {server.url}"
    assert json.loads((root / "etc/pkgrepo/trusted/main.root.json").read_text())["signed"]["_type"] == "root"


def test_packaged_client_installs_searches_removes_and_refuses_tampering(served) -> None:
    _server, root = served
    found = in_root(root, ["pkgrepo", "search", "hel"])
    assert found.returncode == 0 and found.stdout.startswith("hello "), found.stderr
    before = tree(root)
    bad = in_root(root, ["pkgrepo", "install", "victim"])  # no --repo, --trust or --root: /etc/pkgrepo and /
    one_line_error(bad, 2)
    after = {k: v for k, v in tree(root).items() if not k.startswith("root/.cache")}
    assert after == {k: v for k, v in before.items() if not k.startswith("root/.cache")}
    ok = in_root(root, ["pkgrepo", "install", "hello"])
    assert ok.returncode == 0, ok.stderr
    assert "installed hello" in ok.stdout
    assert in_root(root, ["hello"]).stdout.strip() == "Hello, world!"
    info = in_root(root, ["pkgrepo", "info", "hello"])
    assert info.returncode == 0 and "name: hello" in info.stdout, info.stderr
    gone = in_root(root, ["pkgrepo", "remove", "hello"])
    assert gone.returncode == 0 and "removed hello" in gone.stdout, gone.stderr
    assert not (root / "usr/bin/hello").exists()


def test_the_client_runs_without_pydantic_pysat_or_cryptography(served) -> None:
    _server, root = served
    for module in ("pydantic", "pysat", "cryptography"):
        proc = in_root(root, ["python3", "-c", f"import {module}"])
        assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr, module
    probe = (
        "import sys, pkgrepo.cli, pkgrepo.image.apply, pkgrepo.repo.client, pkgrepo.resolve.minimize; "
        "print(sorted(m for m in sys.modules if m.startswith(('pkgrepo.builder', 'pkgrepo.recipe'))))"
    )
    proc = in_root(root, ["python3", "-c", probe])
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_outside_an_image_the_flags_stay_required(tmp_path: Path) -> None:
    env = {"PKGREPO_CONFIG_DIR": str(tmp_path / "none")}
    one_line_error(run_cli("install", "hello", "--packages", str(tmp_path), env=env), 2)
    one_line_error(run_cli("search", env=env), 2)


def test_prod_closure_has_no_package_manager_and_dev_has_it(client_set: Path) -> None:
    def names(profile: str) -> set[str]:
        proc = run_cli(
            "resolve",
            "--index",
            f"native:{client_set}",
            "--profile",
            profile,
            "--json",
            "python3",
            check=True,
        )
        return {p["name"] for p in json.loads(proc.stdout)["packages"]}

    prod, dev = names("prod"), names("dev")
    client = {"pkgrepo", "py3-tuf", "py3-click", "busybox", "python3-pip", "dash"}
    assert not prod & client, prod & client
    assert {"pkgrepo", "py3-tuf", "busybox"} <= dev


@pytest.fixture(scope="module")
def app_image(client_set: Path, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pyapp")
    run_cli(
        "image",
        "build",
        str(APP),
        "--packages",
        str(client_set),
        "--out",
        str(work / "layout"),
        "--rootfs",
        str(work / "rootfs"),
        check=True,
    )
    return work


def test_python_app_prod_image_is_hardened(app_image: Path) -> None:
    root = app_image / "rootfs"
    for absent in (
        "bin/sh",
        "usr/bin/sh",
        "usr/bin/busybox",
        "usr/bin/pkgrepo",
        "usr/bin/pip3",
        "usr/lib/python3.11/site-packages/pip",
        "usr/lib/python3.11/site-packages/pkgrepo",
    ):
        assert not os.path.lexists(root / absent), absent
    proc = run_cli("image", "audit", str(app_image / "layout"))
    assert proc.returncode == 0, proc.stdout


def test_python_app_answers_http_as_nonroot(app_image: Path) -> None:
    port = free_port()
    argv = bwrap_argv(
        ["--bind", str(app_image / "rootfs"), "/"],
        ["/usr/bin/python3", "/app/server.py"],
        hostname="app",
        cwd="/app",
        env={
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    i = argv.index("--unshare-all")
    argv[i + 1 : i + 1] = ["--share-net"]
    argv[argv.index("--uid") + 1] = argv[argv.index("--gid") + 1] = "65532"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=5) as r:
                    answer = json.loads(r.read())
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        assert answer is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert answer["path"] == "/hello" and answer["hits"] == 1 and answer["uid"] == 65532
        assert answer["python"] == "3.11.2" and answer["openssl"].startswith("OpenSSL 3")
        assert answer["ca_certificates"] > 100 and answer["sqlite"].startswith("3.")
    finally:
        proc.terminate()
        proc.wait(10)


def test_pkgrepo_source_is_deterministic(tmp_path: Path) -> None:
    script = [sys.executable, str(ROOT / "scripts" / "pkgrepo-source.py"), "--cache", str(tmp_path / "c")]
    one = subprocess.run(
        [*script, "--recipe", str(tmp_path / "a.yaml")], capture_output=True, text=True, check=True
    )
    two = subprocess.run(
        [*script, "--recipe", str(tmp_path / "b.yaml"), "--mirror", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert one.stdout.split()[0] == two.stdout.split()[0]
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()
    assert (tmp_path / "m" / one.stdout.split()[0]).is_file()
    shutil.rmtree(tmp_path / "c")
