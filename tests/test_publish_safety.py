"""Publishing is atomic and serialised: kill -9 at random points, and concurrent publishers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.archives import make_package
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.repos import Client
from tests.helpers.servers import PkgrepoServer


def _names(client: Client) -> set[str]:
    proc = client.run("search", "--repo", client.url, "--trust", str(client.trust), "--json")
    assert proc.returncode == 0, proc.stderr
    return {e["name"] for e in json.loads(proc.stdout)["packages"]}


def test_kill_9_during_publish_leaves_old_or_new(tmp_path: Path):
    repo, keys, trust = tmp_path / "repo", tmp_path / "keys", tmp_path / "root.json"
    env = {"PKGREPO_KEYS": str(keys)}
    run_cli("repo", "init", str(repo), "--export-root", str(trust), env=env, check=True)
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    base = make_package(pkgs, "base")
    run_cli("publish", "--repo", str(repo), str(base), env=env, check=True)
    server = PkgrepoServer(repo)
    client = Client(server.url, trust, tmp_path / "cache", tmp_path / "root")
    rng = random.Random(20261127)
    known = _names(client)
    outcomes = {"old": 0, "new": 0}
    try:
        start = time.monotonic()
        batch = [make_package(pkgs, f"warm{i}") for i in range(12)]
        run_cli("publish", "--repo", str(repo), *map(str, batch), env=env, check=True)
        duration = time.monotonic() - start
        known = _names(client)
        for trial in range(20):
            batch = [make_package(pkgs, f"t{trial}p{i}") for i in range(12)]
            proc = subprocess.Popen(
                [sys.executable, "-m", "pkgrepo", "publish", "--repo", str(repo), *map(str, batch)],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0, 1.3 * duration))  # some kills land after the commit too
            proc.kill()
            proc.wait()
            seen = _names(client)
            new = known | {f"t{trial}p{i}" for i in range(12)}
            assert seen in (known, new), f"trial {trial}: a mixture of old and new"
            outcomes["new" if seen == new else "old"] += 1
            # what the client sees also verifies and installs
            pick = f"t{trial}p11" if seen == new else "base"
            proc = client.install(pick)
            assert proc.returncode == 0, proc.stderr
            known = seen
        # after all the kills, a publish still works and lands
        last = make_package(pkgs, "after")
        run_cli("publish", "--repo", str(repo), str(last), env=env, check=True)
        assert "after" in _names(client)
    finally:
        server.stop()
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes  # kills landed on both sides of the commit


def test_concurrent_publishes_both_land(tmp_path: Path):
    repo, keys, trust = tmp_path / "repo", tmp_path / "keys", tmp_path / "root.json"
    env = {**os.environ, "PKGREPO_KEYS": str(keys)}
    run_cli("repo", "init", str(repo), "--export-root", str(trust), env=env, check=True)
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    groups = [[make_package(pkgs, f"g{g}p{i}") for i in range(8)] for g in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pkgrepo", "publish", "--repo", str(repo), *map(str, grp)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for grp in groups
    ]
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    server = PkgrepoServer(repo)
    try:
        client = Client(server.url, trust, tmp_path / "cache", tmp_path / "root")
        assert _names(client) == {f"g{g}p{i}" for g in range(3) for i in range(8)}
    finally:
        server.stop()


def test_a_package_replaced_by_a_fifo_is_refused_not_waited_on(tmp_path: Path):
    """`publish` checks its files exist before it waits for the repository lock; a file replaced
    by a FIFO in between (or while the head is read) is refused in one line, not blocked on
    forever with the lock held (found by racing `pkgrepo publish` with a swapping loop)."""
    from pkgrepo.errors import BadInput
    from pkgrepo.repo.repository import _read_package

    fifo = tmp_path / "p-1.0-r1.x86_64.pkg.tar.zst"
    os.mkfifo(fifo)
    outcome = _outcome(lambda: _read_package(fifo), fifo)
    assert isinstance(outcome, BadInput), "blocked on a FIFO, or read it"
    assert str(outcome) == f"{fifo}: not a regular file (a FIFO, device or socket); publish a package file"


def _outcome(call, fifo: Path) -> BaseException | None:
    """What `call()` raised (None: it returned), run in a thread; if it is still blocked after
    20 s (on opening `fifo`), a writer's open and close release it first."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as e:  # the outcome is the assertion
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
    assert outcome, "still blocked after the FIFO was opened for writing"
    return outcome[0]


def test_evidence_replaced_by_a_fifo_is_refused_not_waited_on(tmp_path: Path):
    """An SBOM beside a package is listed (`is_file`) and then read, lock held: one replaced by
    a FIFO in between is refused in one line and nothing is published."""
    from pkgrepo.errors import BadInput
    from pkgrepo.repo.keys import KeyStore
    from pkgrepo.repo.repository import Repository

    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    pkg = make_package(pkgs, "p")
    sbom = pkg.with_name(pkg.name + ".spdx.json")
    os.mkfifo(sbom)
    repo = Repository(tmp_path / "repo", KeyStore(tmp_path / "keys"))
    repo.init()
    outcome = _outcome(
        lambda: repo.publish([pkg], sidecars=lambda files: [(f"packages/{sbom.name}", sbom)]), sbom
    )
    assert isinstance(outcome, BadInput), "blocked on a FIFO, or published it"
    assert str(outcome).startswith(f"{sbom}: ") and "not a regular file" in str(outcome)
    assert repo.timestamp().signed.version == 1  # nothing published


@pytest.mark.parametrize("planted", ["garbage", "link"])
def test_a_file_found_at_a_target_name_is_written_over_unless_it_holds_the_signed_bytes(
    tmp_path: Path, planted: str
):
    """Every target a publish signs is, once it returns, a regular file of its signed bytes:
    a file already at a target's content-addressed name (left by a crash, planted, a link
    elsewhere) is replaced unless it is one (planted here: the package and its evidence; the
    index goes through the same check)."""
    import hashlib

    from pkgrepo.repo.index import INDEX
    from pkgrepo.repo.keys import KeyStore
    from pkgrepo.repo.repository import Repository
    from pkgrepo.web.verified import verify

    pool = tmp_path / "pool"
    pool.mkdir()
    pkg = make_package(pool, "q")
    evidence = pkg.with_name(pkg.name + ".spdx.json")
    evidence.write_text('{"spdx": 1}')
    repo = Repository(tmp_path / "repo", KeyStore(tmp_path / "keys"))
    repo.init()
    first = make_package(pool, "first")
    repo.publish([first])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the signed bytes\n")
    names = [
        repo.targets_dir / "packages" / f"{hashlib.sha256(p.read_bytes()).hexdigest()}.{p.name}"
        for p in (pkg, evidence)
    ]
    for path in names:
        if planted == "garbage":
            path.write_text("not the signed bytes\n")
        else:
            path.symlink_to(elsewhere)
    before = set(repo.targets_dir.glob(f"*.{INDEX}"))
    repo.publish([pkg], sidecars=lambda files: [(f"packages/{evidence.name}", evidence)])
    (new_index,) = set(repo.targets_dir.glob(f"*.{INDEX}")) - before
    verified = verify(repo.root)
    for target in verified.targets:
        assert not verified.local(target).is_symlink(), target
        verified.read(target)  # the signed bytes, or BadInput
    assert elsewhere.read_text() == "not the signed bytes\n"  # a link is replaced, not written through
    assert new_index.is_file()
