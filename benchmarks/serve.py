"""Throughput of `pkgrepo serve` against nginx on the same repository tree, in one run.

Usage: python -m benchmarks.serve [--packages DIR] [--clients 32] [--requests 3000] [--idle 3000]

Publishes the packages directory (default ./packages) into a fresh repository,
serves it with `pkgrepo serve` and with Debian's nginx on loopback, and has
--clients concurrent keep-alive clients download --requests files (metadata
and packages, in a fixed shuffled order) from each: once alone, and once while
--idle connections are held open (a third silent, a third with half a request
head, a third idle keep-alive after one answer; issue 17). Prints requests/s,
MiB/s, errors, the time one GET took in the crowd, and the ratios. Targets:
zero errors in both runs (issue 3, issue 17); the ratio says how far the
built-in server is from nginx (use nginx or a CDN for heavy traffic).
"""

from __future__ import annotations

import argparse
import http.client
import random
import resource
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.repository import Repository
from tests.helpers.servers import NginxServer, PkgrepoServer


def load(url: str, paths: list[str], clients: int) -> tuple[float, int, int]:
    """(seconds, bytes, errors) for all `paths` spread over `clients` keep-alive connections."""
    parts = urllib.parse.urlsplit(url)
    chunks = [paths[i::clients] for i in range(clients)]
    totals = [0] * clients
    errors = [0] * clients

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        for p in chunks[i]:
            try:
                conn.request("GET", "/" + p)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    errors[i] += 1
                totals[i] += len(body)
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, sum(totals), sum(errors)


def crowd(url: str, count: int) -> list[socket.socket]:
    """`count` idle connections: silent, half a request head, idle keep-alive after one answer."""
    parts = urllib.parse.urlsplit(url)
    held = []
    for i in range(count):
        s = socket.create_connection((parts.hostname, parts.port), timeout=30)
        held.append(s)
        if i % 3 == 1:
            s.sendall(b"GET /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\nX-Slow")
        elif i % 3 == 2:
            s.sendall(b"HEAD /metadata/timestamp.json HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
    return held


def one_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url + "metadata/timestamp.json", timeout=30) as r:
        r.read()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=Path, default=Path("packages"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--idle", type=int, default=3000, help="idle connections held in the second run")
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the crowd's sockets are ours too
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-bench-serve-"))
    try:
        repo = Repository(work / "repo", KeyStore(work / "keys"))
        repo.init()
        repo.publish(sorted(args.packages.glob("*.pkg.tar.zst")))
        files = [
            str(p.relative_to(repo.root))
            for p in sorted(repo.root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        ]
        rng = random.Random(1)
        paths = [rng.choice(files) for _ in range(args.requests)]
        results, crowded, waits = {}, {}, {}
        for name, server in (
            ("pkgrepo serve", PkgrepoServer(repo.root)),
            ("nginx", NginxServer(repo.root, work / "nginx")),
        ):
            try:
                load(server.url, paths[:200], args.clients)  # warm up
                results[name] = load(server.url, paths, args.clients)
                held = crowd(server.url, args.idle)
                try:
                    waits[name] = one_get(server.url)
                    crowded[name] = load(server.url, paths, args.clients)
                finally:
                    for s in held:
                        s.close()
            finally:
                server.stop()
        print(f"{len(paths)} GETs of {len(files)} files, {args.clients} concurrent clients")
        for title, table in (("alone", results), (f"with {args.idle} idle connections held", crowded)):
            print(title)
            for name, (secs, size, errs) in table.items():
                print(
                    f"  {name:15} {len(paths) / secs:9.0f} req/s {size / secs / 2**20:8.1f} MiB/s  errors {errs}"
                )
            ours, theirs = table["pkgrepo serve"][0], table["nginx"][0]
            print(f"  throughput ratio pkgrepo/nginx: {theirs / ours:.2f}")
        for name, secs in waits.items():
            print(f"one GET in the crowd, {name}: {secs * 1000:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
