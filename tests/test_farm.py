"""Builds through a real dask.distributed scheduler and workers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.servers import free_port

DASK = str(Path(sys.executable).parent / "dask")
pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path):
    """A scheduler and two single-thread workers (no nanny: a killed worker stays dead)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    commands = {
        "scheduler": [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    }
    for i in range(2):
        commands[f"w{i}"] = [
            DASK,
            "worker",
            address,
            "--nthreads",
            "1",
            "--no-nanny",
            "--no-dashboard",
            "--name",
            f"w{i}",
            "--host",
            "127.0.0.1",
        ]
    procs = []
    for name, argv in commands.items():
        with open(tmp_path / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log))
    client = Client(address, timeout=30)
    client.wait_for_workers(2, timeout=60)
    try:
        yield address, client
    finally:
        client.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _seed(built: Path, out: Path, names: list[str]) -> None:
    """An output directory holding only `names`' packages and records, as a local build left them."""
    (out / ".builds").mkdir(parents=True)
    for name in names:
        shutil.copy(built / ".builds" / f"{name}.json", out / ".builds")
        for f in built.glob(f"{name}-*.pkg.tar.zst"):
            shutil.copy(f, out)


def _same_as_local(built: Path, out: Path, names: list[str]) -> None:
    files = sorted(f.name for n in names for f in out.glob(f"{n}-*.pkg.tar.zst"))
    assert files, "nothing was built"
    for name in files:
        assert (out / name).read_bytes() == (built / name).read_bytes(), (
            f"{name} differs from the local build"
        )


def test_workers_build_bit_identical_packages(built: Path, tmp_path: Path, cluster):
    address, _client = cluster
    out = tmp_path / "out"
    _seed(built, out, ["musl", "busybox"])  # busybox: what hello's test runs in, built locally already
    run_cli("build", "hello", "zlib", "--out", str(out), "--scheduler", address, "--no-test", check=True)
    _same_as_local(built, out, ["hello", "zlib"])
    proc = run_cli("build", "hello", "--out", str(out), "--scheduler", address, "--json", check=True)
    builds = {b["name"]: b for b in json.loads(proc.stdout)["builds"]}
    assert "hello" in builds and all(b["cached"] for b in builds.values()), {
        n: b["cached"] for n, b in builds.items()
    }
    # the record came back with the packages: it names exactly the files the worker returned
    record = json.loads((out / ".builds" / "hello.json").read_text())
    assert sorted(Path(p).name for p in builds["hello"]["packages"]) == sorted(record["packages"])


def test_a_worker_killed_mid_build_is_retried_on_the_other(built: Path, tmp_path: Path, cluster):
    address, client = cluster
    out = tmp_path / "out"
    _seed(built, out, ["musl"])
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pkgrepo",
            "build",
            "hello",
            "--out",
            str(out),
            "--scheduler",
            address,
            "--no-test",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(k).startswith("pkgrepo-build-hello") for k in keys):
                victim = worker
        time.sleep(0.2)
    assert victim, "the build never reached a worker"
    pids = client.run(os.getpid)
    time.sleep(3)  # mid-build: configure is running in the sandbox
    os.kill(pids[victim], signal.SIGKILL)
    _stdout, stderr = cli.communicate(timeout=600)
    assert cli.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert list(client.nthreads()) == [w for w in pids if w != victim]
    _same_as_local(built, out, ["hello"])
