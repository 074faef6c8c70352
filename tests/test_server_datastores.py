"""The datastore images (issue 21, part B): Valkey and PostgreSQL prod images doing their real work.

Each prod image is built from the example spec in repo-data/images/ and its root run as a container
runtime would run it: bwrap with the root as `/`, the host's loopback shared, as uid 65532. When the
tests run as root (CI), bwrap itself runs as host uid 65532 too, so the directories the spec gives
nonroot are really that user's and a write anywhere else fails. Servers listen on free ports, every
wait has a deadline, and every process is reaped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from pkgrepo.builder.sandbox import bwrap_argv
from tests.helpers.cli import ROOT, build_cached, run_cli
from tests.helpers.servers import free_port

pytestmark = pytest.mark.slow

IMAGES = ROOT / "repo-data" / "images"
NONROOT = 65532
# As root the container's processes are host uid 65532 (see the module docstring); otherwise the caller.
HOST_USER = NONROOT if os.geteuid() == 0 else None


@pytest.fixture(scope="module")
def packages(built: Path, tmp_path_factory) -> Path:
    """`built` plus valkey, postgresql and openssl (the command that makes the server certificate)."""
    out = tmp_path_factory.mktemp("datastores")
    shutil.copytree(built, out, dirs_exist_ok=True)
    proc = build_cached(out, "valkey", "postgresql", "openssl")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    """A directory uid 65532 can reach (pytest's temporary directories are the caller's, mode 0700)."""
    d = Path(tempfile.mkdtemp(prefix="pkgrepo-datastores-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def spec(name: str) -> dict:
    return yaml.safe_load((IMAGES / f"{name}.yaml").read_text())


def image(name: str, packages: Path, work: Path) -> Path:
    """The prod image of repo-data/images/NAME.yaml: `work/NAME/layout` and `work/NAME/root`."""
    out = work / name
    out.mkdir(mode=0o755)
    run_cli(
        "image", "build", str(IMAGES / f"{name}.yaml"), "--packages", str(packages),
        "--out", str(out / "layout"), "--rootfs", str(out / "root"), check=True,
    )  # fmt: skip
    mount_points(out / "root")
    return out


def mount_points(root: Path) -> None:
    """The directories a container runtime makes in a root to mount /proc, /dev and secrets on."""
    for d in ("proc", "dev", "run/secrets"):
        (root / d).mkdir(mode=0o755, parents=True, exist_ok=True)


def container(root: Path, argv: list[str], binds: tuple[str, ...] = (), env: dict | None = None) -> list[str]:
    """`argv` with `root` as `/`, uid 65532 inside, the host's loopback shared, `binds` added."""
    args = bwrap_argv(
        ["--bind", str(root), "/", *binds],
        argv,
        hostname="datastore",
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", **(env or {})},
    )
    i = args.index("--unshare-all")
    args[i + 1 : i + 1] = ["--share-net"]
    args[args.index("--uid") + 1] = args[args.index("--gid") + 1] = str(NONROOT)
    return args


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, user=HOST_USER, group=HOST_USER,
        extra_groups=[] if HOST_USER else None,
    )  # fmt: skip


@contextmanager
def serving(argv: list[str], ready: Callable[[], bool], timeout: float = 30) -> Iterator[subprocess.Popen]:
    """A server started with `argv`, yielded once `ready()` holds; killed and reaped on the way out."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, user=HOST_USER, group=HOST_USER,
            extra_groups=[] if HOST_USER else None,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    program = next(a for a in argv if a.startswith("/usr/bin/"))
                    pytest.fail(f"{program}: not ready (exit {proc.poll()}):\n{log.read().decode()[-3000:]}")
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def owned_by_nonroot(path: Path) -> None:
    if HOST_USER is not None:
        assert path.stat().st_uid == NONROOT, path


@pytest.fixture(scope="module")
def valkey(packages: Path, work: Path) -> Path:
    return image("valkey", packages, work)


@pytest.fixture(scope="module")
def postgresql(packages: Path, work: Path) -> Path:
    return image("postgresql", packages, work)


@pytest.mark.parametrize("name", ["valkey", "postgresql"])
def test_prod_image_passes_the_audit(name: str, request) -> None:
    out = request.getfixturevalue(name)
    assert (
        not os.path.lexists(out / "root" / "bin" / "sh") and not (out / "root" / "usr/bin/busybox").exists()
    )
    proc = run_cli("image", "audit", str(out / "layout"))
    assert proc.returncode == 0, proc.stdout


def test_valkey_answers_and_persists_to_its_volume(valkey: Path) -> None:
    """PING, SET, GET from our valkey-cli; SHUTDOWN saves the RDB snapshot beside the append-only file
    in /data (owned by nonroot), and a new server started on the same directory has the data."""
    root, data, port = valkey / "root", valkey / "root" / "data", free_port()
    owned_by_nonroot(data)
    assert data.stat().st_mode & 0o777 == 0o700 and not list(data.iterdir())
    s = spec("valkey")
    server = container(root, [*s["entrypoint"], *s["cmd"], "--port", str(port), "--bind", "127.0.0.1"])

    def cli(*args: str) -> str:
        proc = run(container(root, ["valkey-cli", "-h", "127.0.0.1", "-p", str(port), *args]), timeout=10)
        return proc.stdout.strip() if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr}"

    with serving(server, lambda: cli("ping") == "PONG") as proc:
        assert cli("set", "greeting", "hello") == "OK"
        assert cli("get", "greeting") == "hello"
        assert cli("incrby", "n", "41") == "41"
        assert cli("config", "get", "dir").splitlines() == ["dir", "/data"]
        cli("shutdown")
        assert proc.wait(15) == 0
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    assert "dump.rdb" in files and [f for f in files if f.startswith("appendonlydir/") and ".aof" in f], files
    for f in data.rglob("*"):
        owned_by_nonroot(f)
    with serving(server, lambda: cli("ping") == "PONG"):
        assert cli("get", "greeting") == "hello"
        assert cli("incr", "n") == "42"
        cli("shutdown")


def test_postgresql_initialises_as_nonroot_and_serves_tls(
    postgresql: Path, packages: Path, work: Path
) -> None:
    """The prod image's initdb initialising a cluster as 65532 on a volume, a server certificate from
    our `openssl` command, the prod image's server with ssl=on on that volume, and our psql
    connecting with sslmode=verify-full: pg_stat_ssl says the session is TLS. Prod has no shell:
    our initdb runs postgres without one (recipes/postgresql/initdb-without-shell.patch)."""
    root, s = postgresql / "root", spec("postgresql")
    assert not os.path.lexists(root / "bin" / "sh") and not (root / "usr/bin/busybox").exists()
    pgdata = s["environment"]["PGDATA"]
    owned_by_nonroot(root / pgdata.lstrip("/"))
    volume, secrets = work / "pg-volume", work / "pg-secrets"
    volume.mkdir(mode=0o700)
    secrets.mkdir(mode=0o755)
    (secrets / "pw").write_text("s3cret\n")
    if HOST_USER is not None:
        os.chown(volume, NONROOT, NONROOT)
        os.chown(secrets, NONROOT, NONROOT)
    tools = work / "openssl-root"
    tools_spec = work / "openssl.yaml"
    tools_spec.write_text("name: openssl-tool\npackages: [openssl]\n")
    run_cli(
        "image", "build", str(tools_spec), "--packages", str(packages), "--rootfs", str(tools), check=True
    )
    mount_points(tools)
    made = run(
        container(
            tools,
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "/run/secrets/server.key", "-out", "/run/secrets/server.crt", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
            binds=("--bind", str(secrets), "/run/secrets"),
        )
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (secrets / "server.key").chmod(0o600)
    env = {"PGDATA": pgdata}
    mounts = ("--ro-bind", str(secrets), "/run/secrets", "--bind", str(volume), pgdata)
    initdb = ["initdb", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
              "--pwfile=/run/secrets/pw", "--no-locale", "-E", "UTF8"]  # fmt: skip
    init = run(container(root, initdb, binds=mounts, env=env), timeout=180)
    assert init.returncode == 0, init.stdout + init.stderr
    # its trial runs of `postgres --check` succeeded: were every one to fail, it would take 20
    assert 'selecting default "max_connections" ... 100\n' in init.stdout, init.stdout
    assert (volume / "PG_VERSION").read_text().strip() == "18"
    owned_by_nonroot(volume / "PG_VERSION")
    port = free_port()
    server = container(
        root,
        [*s["entrypoint"], *s["cmd"], "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
         "-c", "ssl=on", "-c", "ssl_cert_file=/run/secrets/server.crt", "-c", "ssl_key_file=/run/secrets/server.key"],
        binds=mounts, env=env,
    )  # fmt: skip
    conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslrootcert=/run/secrets/server.crt"

    def psql(sql: str, mode: str = "verify-full", password: str = "s3cret") -> subprocess.CompletedProcess:
        argv = ["psql", f"{conninfo} sslmode={mode}", "-v", "ON_ERROR_STOP=1", "-Atc", sql]
        return run(container(root, argv, binds=mounts, env={"PGPASSWORD": password}), timeout=20)

    def ready() -> bool:
        return run(container(root, ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)])).returncode == 0

    with serving(server, ready, timeout=60):
        session = psql("select ssl, version, current_user from pg_stat_ssl where pid = pg_backend_pid()")
        assert session.returncode == 0, session.stderr
        assert session.stdout.strip() == "t|TLSv1.3|postgres"
        q = psql("create table t (x int); insert into t values (1), (2); select sum(x) from t")
        assert q.returncode == 0 and q.stdout.strip().splitlines()[-1] == "3", q.stderr
        assert psql("select version()").stdout.startswith("PostgreSQL 18.6 ")
        wrong = psql("select 1", password="wrong")
        assert wrong.returncode == 2 and "password authentication failed" in wrong.stderr
