"""Server -> client: a slow, lying or absent server against the real client (findings 13-15, 18).

The hostile server is a real HTTP server on 127.0.0.1 in a thread of the test:
it serves a real signed repository but misbehaves on chosen files (trickles
one byte a second, closes early, answers 500). Every loop in it is bounded in
time, and it stops itself when the test ends.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.archives import make_package
from tests.helpers.cli import run_cli
from tests.helpers.servers import PkgrepoServer, free_port

TRICKLE_CAP = 30.0  # no handler of the hostile server runs longer than this


class Hostile(ThreadingHTTPServer):
    """Serves `repo`; a request whose path contains `target` gets `mode` instead of the file."""

    daemon_threads = True

    def __init__(self, repo: Path, target: str, mode: str):
        self.repo, self.target, self.mode = repo, target, mode
        self.done = threading.Event()
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self) -> None:
        self.done.set()
        self.shutdown()
        self.server_close()


class HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Hostile

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.server.repo / self.path.lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        mode = self.server.mode if self.server.target in self.path else "ok"
        if mode == "status-trickle":  # even the status line comes one byte a second
            return self._trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")
        if mode == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "trickle":
            return self._trickle(data)
        if mode == "short":  # promise everything, send half, hang up
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def _trickle(self, data: bytes) -> None:
        start = time.monotonic()
        for i in range(len(data)):
            if self.server.done.wait(1.0) or time.monotonic() - start > TRICKLE_CAP:
                break
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                break
        self.close_connection = True


class Repo:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.trust = tmp / "root.json"
        self.env = {"PKGREPO_KEYS": str(tmp / "keys"), "PKGREPO_CACHE": str(tmp / "cache")}
        run_cli("repo", "init", str(self.repo), "--export-root", str(self.trust), env=self.env, check=True)
        pkgs = tmp / "pkgs"
        pkgs.mkdir()
        files = [make_package(pkgs, "lib"), make_package(pkgs, "app", depends=("lib",))]
        run_cli("publish", "--repo", str(self.repo), *map(str, files), env=self.env, check=True)

    def search(self, url: str, *extra: str, env: dict[str, str] | None = None, trust: Path | None = None):
        return run_cli(
            "search",
            "--repo",
            url,
            "--trust",
            str(trust or self.trust),
            *extra,
            env={**self.env, **(env or {})},
            timeout=120,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def one_line(proc, code: int, *words: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pkgrepo: error: "), lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("mode", ["trickle", "status-trickle"])
def test_trickling_server_is_cut_off_by_the_file_deadline(repo: Repo, mode: str):
    server = Hostile(repo.repo, "timestamp.json", mode)
    try:
        start = time.monotonic()
        proc = repo.search(server.url, env={"PKGREPO_DOWNLOAD_TIMEOUT": "2"})
        took = time.monotonic() - start
    finally:
        server.stop()
    one_line(proc, 3, "timestamp.json", "not complete within 2s", "PKGREPO_DOWNLOAD_TIMEOUT")
    assert took < 15, took


def test_trickling_server_is_cut_off_by_the_command_deadline(repo: Repo):
    server = Hostile(repo.repo, "index.jsonl", "trickle")
    try:
        start = time.monotonic()
        proc = repo.search(
            server.url, env={"PKGREPO_DOWNLOAD_TIMEOUT": "100", "PKGREPO_COMMAND_TIMEOUT": "3"}
        )
        took = time.monotonic() - start
    finally:
        server.stop()
    one_line(proc, 3, "index.jsonl", "over 3s", "PKGREPO_COMMAND_TIMEOUT")
    assert took < 15, took


@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf", "nan"])
def test_deadline_settings_are_checked(repo: Repo, value: str):
    proc = repo.search("http://127.0.0.1:1/", env={"PKGREPO_DOWNLOAD_TIMEOUT": value})
    one_line(proc, 2, "PKGREPO_DOWNLOAD_TIMEOUT", "seconds")


def test_closed_early_and_server_errors(repo: Repo):
    server = Hostile(repo.repo, "index.jsonl", "short")
    try:
        one_line(repo.search(server.url), 3, "index.jsonl", "closed the connection early")
    finally:
        server.stop()
    server = Hostile(repo.repo, "timestamp.json", "500")
    try:
        one_line(repo.search(server.url), 3, "timestamp.json", "HTTP 500 Internal Server Error")
    finally:
        server.stop()
    served = PkgrepoServer(repo.repo)
    try:
        one_line(repo.search(served.url + "elsewhere/"), 3, "HTTP 404 Not Found")
        assert repo.search(served.url).returncode == 0  # the failures above left no state behind
    finally:
        assert served.stop() == 0


def test_unreachable_servers(repo: Repo):
    one_line(repo.search(f"http://127.0.0.1:{free_port()}/"), 3, "connection refused")
    one_line(repo.search("http://nonexistent.invalid/"), 3, "cannot resolve the host name")


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8080", "localhost", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:99999/"]
)
def test_urls_that_are_not_repositories(repo: Repo, url: str):
    proc = repo.search(url)
    one_line(proc, 2, "URL" if "99999" not in url else "port")
    assert "Warning" not in proc.stderr


def test_search_and_info_need_a_repository():
    for command in (["search"], ["info", "hello"]):
        proc = run_cli(*command)
        assert proc.returncode == 2
        # outside an image there is no /etc/pkgrepo/repositories to fall back on (issue 10)
        assert "--repo URL is required" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.fixture
def other(repo: Repo, tmp_path: Path) -> Path:
    """The trusted root of another repository: a wrong --trust for `repo`."""
    root = tmp_path / "other-root.json"
    run_cli(
        "repo",
        "init",
        str(tmp_path / "other"),
        "--keys",
        str(tmp_path / "other-keys"),
        "--export-root",
        str(root),
        env=repo.env,
        check=True,
    )
    return root


def test_a_wrong_trust_used_once_does_not_poison_the_cache(repo: Repo, other: Path):
    served = PkgrepoServer(repo.repo)
    try:
        one_line(repo.search(served.url, trust=other), 2, "bad signature", f"is --trust {other} the root")
        proc = repo.search(served.url)
        assert proc.returncode == 0, proc.stderr
        assert "app 1.0-r1" in proc.stdout
    finally:
        assert served.stop() == 0


def test_the_trust_on_the_command_line_is_checked_against_the_cache(repo: Repo, other: Path, tmp_path: Path):
    served = PkgrepoServer(repo.repo)
    try:
        assert repo.search(served.url).returncode == 0  # the cache now trusts this repository's root
        line = one_line(
            repo.search(served.url, trust=other), 2, f"--trust {other}", "not on the chain", "remove"
        )
        cache_dir = Path(line.split("remove ")[1].split(" and run")[0])
        assert cache_dir.is_dir() and cache_dir.is_relative_to(tmp_path / "cache")
        assert repo.search(served.url).returncode == 0  # the refusal changed nothing
        # a newer root, signed by the one the cache holds, is on the chain once the client follows it
        newer = tmp_path / "root-v2.json"
        run_cli(
            "repo",
            "rotate",
            str(repo.repo),
            "--role",
            "root",
            "--export-root",
            str(newer),
            env=repo.env,
            check=True,
        )
        proc = repo.search(served.url, trust=newer)
        assert proc.returncode == 0, proc.stderr
        assert repo.search(served.url).returncode == 0  # and the first root still is
    finally:
        assert served.stop() == 0


def test_the_newest_release_is_installed_not_the_smallest(repo: Repo, tmp_path: Path):
    """A repository keeps the releases it replaced; the minimizer counts bytes, so an older and
    smaller release must not be offered beside its replacement (from a repository or a directory)."""
    pkgs = tmp_path / "newer"
    pkgs.mkdir()
    bigger = {"usr/share/lib/VERSION": "lib 2.0 patched\n" + "x" * 4096}
    newer = make_package(pkgs, "lib", version="2.0", files=bigger)
    run_cli("publish", "--repo", str(repo.repo), str(newer), env=repo.env, check=True)
    served = PkgrepoServer(repo.repo)
    try:
        root = tmp_path / "root"
        run_cli(
            "install",
            "--repo",
            served.url,
            "--trust",
            str(repo.trust),
            "--root",
            str(root),
            "app",
            env=repo.env,
            check=True,
            timeout=120,
        )
        assert (root / "usr/share/lib/VERSION").read_text().startswith("lib 2.0")
    finally:
        served.stop()
    both = tmp_path / "both"
    both.mkdir()
    make_package(both, "lib")
    make_package(both, "lib", version="2.0", files=bigger)
    local = tmp_path / "local"
    run_cli("install", "--packages", str(both), "--root", str(local), "lib", env=repo.env, check=True)
    assert (local / "usr/share/lib/VERSION").read_text().startswith("lib 2.0")


def cached_index(repo: Repo, url: str) -> Path:
    """Where the client caches the signed index of `url` (python-tuf's name for it)."""
    (tuf,) = (repo.tmp / "cache" / "tuf").iterdir()
    path = tuf / "targets" / "index.jsonl"
    assert path.is_file(), sorted(p.name for p in path.parent.iterdir())
    return path


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_anything_but_a_file_in_the_target_cache_is_replaced(repo: Repo, kind: str, tmp_path: Path):
    """A FIFO where the cached index was hung every fetch (python-tuf opens it blocking); a
    symlink there had the download written through it. The timeout turns a hang into a failure."""
    served = PkgrepoServer(repo.repo)
    try:
        assert repo.search(served.url).returncode == 0
        cached = cached_index(repo, served.url)
        cached.unlink()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.write_text("not the index\n")
        if kind == "fifo":
            os.mkfifo(cached)
        elif kind == "symlink":
            cached.symlink_to(elsewhere)
        else:
            cached.mkdir()
        proc = run_cli("search", "--repo", served.url, "--trust", str(repo.trust), env=repo.env, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert "app 1.0-r1" in proc.stdout
        assert cached.is_file() and not cached.is_symlink()
        assert elsewhere.read_text() == "not the index\n"
    finally:
        assert served.stop() == 0


def test_a_cache_entry_that_cannot_be_removed_is_named(repo: Repo):
    served = PkgrepoServer(repo.repo)
    try:
        assert repo.search(served.url).returncode == 0
        cached = cached_index(repo, served.url)
        cached.unlink()
        (cached / "inside").mkdir(parents=True)
        one_line(repo.search(served.url), 2, str(cached), "remove it and run again")
    finally:
        assert served.stop() == 0
