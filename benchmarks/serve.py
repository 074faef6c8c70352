"""Throughput of `pkgrepo serve` against nginx on the same repository tree, in one run.

Usage: python -m benchmarks.serve [--packages DIR] [--clients 32] [--requests 3000]

Publishes the packages directory (default ./packages) into a fresh repository,
serves it with `pkgrepo serve` and with Debian's nginx on loopback, and has
--clients concurrent keep-alive clients download --requests files (metadata
and packages, in a fixed shuffled order) from each. Prints requests/s, MiB/s,
errors, and the ratio. Target (issue 3): zero errors; the ratio says how far
the built-in server is from nginx (use nginx or a CDN for real traffic).
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import tempfile
import threading
import time
import urllib.parse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=Path, default=Path("packages"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
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
        results = {}
        for name, server in (
            ("pkgrepo serve", PkgrepoServer(repo.root)),
            ("nginx", NginxServer(repo.root, work / "nginx")),
        ):
            try:
                load(server.url, paths[:200], args.clients)  # warm up
                results[name] = load(server.url, paths, args.clients)
            finally:
                server.stop()
        print(f"{len(paths)} GETs of {len(files)} files, {args.clients} concurrent clients")
        for name, (secs, size, errs) in results.items():
            print(f"{name:15} {len(paths) / secs:9.0f} req/s {size / secs / 2**20:8.1f} MiB/s  errors {errs}")
        ours, theirs = results["pkgrepo serve"][0], results["nginx"][0]
        print(f"throughput ratio pkgrepo/nginx: {theirs / ours:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
