"""Shared pieces of the repository tests: synthetic packages, servers, a client, root snapshots."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from pkgrepo.package.archive import scan_tree, write_package
from pkgrepo.package.meta import PackageInfo

from conftest import ROOT, run_cli


def make_package(out: Path, name: str, version: str = "1.0", release: int = 1, depends: tuple[str, ...] = (),
                 files: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A small real package: one text file per entry of `files`."""
    stage = out / f".stage-{name}-{version}-{release}"
    files = files or {f"usr/share/{name}/VERSION": f"{name} {version}-r{release}\n"}
    for rel, text in files.items():
        p = stage / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    manifest = scan_tree(stage, sorted(files))
    info = PackageInfo(name=name, version=version, release=release, origin=name, description=f"the {name} package",
                       license="MIT", depends=list(depends), installed_size=sum(e.size for e in manifest),
                       build_date=1_700_000_000)  # fmt: skip
    return write_package(stage, manifest, info, out / info.filename)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PkgrepoServer:
    """The real `pkgrepo serve` in a subprocess."""

    def __init__(self, repo: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "pkgrepo", "serve", str(repo), "--port", "0"],
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
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
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ application/json json; application/zstd zst; }}
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


class Client:
    """`pkgrepo` as a client with its own cache (its own trusted state)."""

    def __init__(self, url: str, trust: Path, cache: Path, root: Path):
        self.url, self.trust, self.cache, self.root = url, trust, cache, root

    def run(self, *args: str):
        return run_cli(*args, env={"PKGREPO_CACHE": str(self.cache)})

    def install(self, *names: str):
        return self.run(
            "install", "--repo", self.url, "--trust", str(self.trust), "--root", str(self.root), *names
        )

    def upgrade(self):
        return self.run("upgrade", "--repo", self.url, "--trust", str(self.trust), "--root", str(self.root))


def tree(root: Path) -> dict[str, str]:
    """Everything in a root: path -> content digest (or link target)."""
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out
