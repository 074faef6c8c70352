"""The build sandbox: no network, cleared environment, fixed paths, read-only host."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from pkgrepo.package.archive import iter_members
from tests.helpers.recipes import build_probe


class Listener:
    """A TCP server on the host's loopback that counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def test_build_cannot_reach_host_network(tmp_path: Path, listener: Listener):
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{listener.port}"
    # The same connection from the host succeeds: the server is really there.
    assert subprocess.run(["bash", "-c", probe], timeout=10).returncode == 0
    assert listener.accepted == 1
    proc, out = build_probe(tmp_path, "netprobe", f"bash -c '{probe}'\necho connected > /build/connected")
    assert proc.returncode == 1, proc.stderr
    assert "netprobe.yaml: step 1 (runs) failed" in proc.stderr
    assert listener.accepted == 1
    assert not list(out.glob("*.pkg.tar.zst"))
    assert (
        "Connection refused" in (out / "logs/netprobe.log").read_text()
        or "Network" in (out / "logs/netprobe.log").read_text()
    )


def test_environment_is_cleared_and_fixed(tmp_path: Path):
    script = """d=${{targets.destdir}}/usr/share/probe
mkdir -p $d
env | sort > $d/env
umask > $d/umask
hostname > $d/hostname
pwd > $d/pwd
ls / | sort > $d/root
if touch /usr/bin/pkgrepo-probe 2>/dev/null; then echo writable > $d/usr; else echo read-only > $d/usr; fi
if test -e /root/.bashrc || test -e /work; then echo visible > $d/home; else echo hidden > $d/home; fi"""
    proc, out = build_probe(tmp_path, "envprobe", script, env={"PKGREPO_LEAK": "secret"})
    assert proc.returncode == 0, proc.stderr
    (pkg,) = out.glob("envprobe-1.0-r1*.pkg.tar.zst")
    files = {m.path: m.data.decode() for m in iter_members(pkg) if m.kind == "file"}
    env = dict(line.split("=", 1) for line in files["usr/share/probe/env"].splitlines())
    assert "PKGREPO_LEAK" not in env and "PYTEST_CURRENT_TEST" not in env
    assert env["PATH"] == "/buildhost/bin:/usr/bin:/usr/sbin:/bin:/sbin"
    assert env["HOME"] == "/build/home" and env["TZ"] == "UTC" and env["LC_ALL"] == "C"
    assert env["SOURCE_DATE_EPOCH"] == "1600000000"  # the newest mtime in the source tarball
    assert files["usr/share/probe/umask"].strip() == "0022"
    assert files["usr/share/probe/hostname"].strip() == "pkgrepo"
    assert files["usr/share/probe/pwd"].strip() == "/build/src"
    assert files["usr/share/probe/usr"].strip() == "read-only"
    assert files["usr/share/probe/home"].strip() == "hidden"
    assert "home" not in files["usr/share/probe/root"].split()


def test_unprovided_library_fails_the_build(tmp_path: Path):
    # No musl-dev in build-depends: the host's gcc links against glibc, which no package provides.
    script = """cc -o prog main.c
install -Dm755 prog ${{targets.destdir}}/usr/bin/prog"""
    proc, out = build_probe(tmp_path, "glibcprobe", script)
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "/usr/bin/prog (package glibcprobe) needs ld-linux-x86-64.so.2" in line
    assert "add the library's package to build-depends" in line
    assert not list(out.glob("*.pkg.tar.zst"))
