"""Servers on the loopback: a plain HTTP file server, the real `pkgrepo serve`, Debian's nginx,
Debian's docker-registry."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.helpers.cli import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PkgrepoServer:
    """The real `pkgrepo serve` in a subprocess."""

    def __init__(self, repo: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pkgrepo", "serve", str(repo), "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        line = self.proc.stderr.readline()
        m = re.search(r"at (http://\S+)", line)
        assert m, f"pkgrepo serve did not start: {line}"
        self.url = m.group(1)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=10)
        rest = self.proc.stderr.read()
        assert "Traceback" not in rest, rest
        return code


NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {work}/nginx.pid;
error_log {work}/error.log;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ application/json json; application/zstd zst; text/html html; text/css css; text/javascript js; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {repo};
        location ~ /\\. {{ deny all; }}
    }}
}}
"""


class NginxServer:
    """Debian's nginx serving the same repository tree."""

    def __init__(self, repo: Path, work: Path):
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, port=port, repo=repo))
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"nginx did not start: {(work / 'error.log').read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextmanager
def http_files(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on the loopback; yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def docker_registry(directory: Path) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, storing under `directory`; yields HOST:PORT."""
    if shutil.which("docker-registry") is None:
        raise AssertionError("docker-registry is not installed: run scripts/setup.sh")
    directory.mkdir(parents=True)
    port = free_port()
    (directory / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {directory / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(directory / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
