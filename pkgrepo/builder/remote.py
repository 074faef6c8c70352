"""Builds on dask.distributed workers: the same builder and sandbox, fed and checked by digest.

The client sends a job — the recipe file and its patches, the packages its
build needs (each with its sha256), the job share — and the worker builds it
with its own verified source cache into a scratch directory, exactly as a
local build would, and returns the packages, the build record and the log.
The client checks every returned package against its digest and the
returned build record before moving it into the packages directory. Dask retries a job whose
worker died on another worker.

Workers are plain `dask worker tcp://HOST:PORT --nthreads 1` processes in an
environment where pkgrepo is installed (with bubblewrap and the host
toolchain); `pkgrepo build --scheduler tcp://HOST:PORT` is the client.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.builder.builder import Builder, BuildResult
from pkgrepo.builder.context import Variation
from pkgrepo.builder.records import BuildRecord, read_record, write_record
from pkgrepo.errors import BuildFailed, PkgrepoError
from pkgrepo.package.meta import PACKAGE_SUFFIX
from pkgrepo.recipe.load import Recipes


@dataclass(frozen=True)
class Job:
    name: str
    recipe: str  # the recipe file's name within `files`
    files: dict[str, bytes]  # the recipe and its patches, by path relative to the recipe's directory
    deps: dict[str, tuple[str, bytes]]  # package file name -> (sha256, bytes)
    jobs: int


@dataclass(frozen=True)
class Returned:
    packages: dict[str, tuple[str, bytes]]  # file name -> (sha256, bytes): packages and their evidence
    record: bytes
    log: bytes
    seconds: float
    error: str | None = None  # a build failure, in pkgrepo's words


def run_job(job: Job) -> Returned:
    """On a worker: build one recipe in a scratch directory; failures are returned, not raised."""
    from pkgrepo.recipe.load import RecipeFile, load_recipe
    from pkgrepo.source import SourceCache

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"pkgrepo-remote-{job.name}-") as tmp:
        recipes, out = Path(tmp) / "recipes", Path(tmp) / "out"
        for rel, data in job.files.items():
            target = recipes / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out.mkdir()
        for filename, (digest, data) in job.deps.items():
            if hashlib.sha256(data).hexdigest() != digest or "/" in filename:
                return Returned({}, b"", b"", 0.0, f"{filename}: build dependency damaged in transfer")
            (out / filename).write_bytes(data)
        path = recipes / job.recipe
        builder = Builder(out, SourceCache())
        try:
            result = builder.build(RecipeFile(path, load_recipe(path)), Variation(jobs=job.jobs), force=True)
        except PkgrepoError as e:
            log = builder.log_path(job.name)
            return Returned(
                {}, b"", log.read_bytes() if log.exists() else b"", time.monotonic() - start, str(e)
            )
        files = [e for p in result.packages for e in (p, *sorted(out.glob(f"{p.name}.*")))]  # with evidence
        datas = {p.name: p.read_bytes() for p in files}
        record = read_record(out, job.name)
        if record is None:
            return Returned(
                {}, b"", result.log.read_bytes(), time.monotonic() - start, f"{job.name}: no build record"
            )
        return Returned(
            {n: (hashlib.sha256(d).hexdigest(), d) for n, d in datas.items()},
            record.to_bytes(),
            result.log.read_bytes(),
            time.monotonic() - start,
        )


def _job(builder: Builder, recipes: Recipes, name: str, closure: set[str], share: int) -> Job:
    path, recipe = recipes[name].path, recipes[name].recipe
    files = {path.name: path.read_bytes()}
    for patch in recipe.patches:
        files[patch.file] = (path.parent / patch.file).read_bytes()
    deps: dict[str, tuple[str, bytes]] = {}
    for dep in sorted(closure):
        record = read_record(builder.out, dep)
        if record is None:
            raise BuildFailed(f"{name}: its build dependency {dep} has no build record in {builder.out}")
        for filename in record.packages:
            data = (builder.out / filename).read_bytes()
            deps[filename] = (hashlib.sha256(data).hexdigest(), data)
    return Job(name, path.name, files, deps, share)


def _accept(builder: Builder, name: str, returned: Returned) -> list[Path]:
    """Move returned packages into place after checking them against the returned record."""
    record = BuildRecord.from_bytes(returned.record, f"{name}: the worker's build record")
    if sorted(record.packages) != sorted(f for f in returned.packages if f.endswith(PACKAGE_SUFFIX)):
        raise BuildFailed(f"{name}: the worker's record does not list the packages it returned")
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=builder.out))
    try:
        for filename, (digest, data) in sorted(returned.packages.items()):
            if "/" in filename or not any(filename.startswith(p) for p in record.packages):
                raise BuildFailed(f"{name}: the worker returned an odd file name {filename!r}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise BuildFailed(f"{name}: {filename} was damaged on its way back from the worker")
            (staging / filename).write_bytes(data)
        finals = []
        for filename in sorted(returned.packages, key=lambda f: (f.endswith(PACKAGE_SUFFIX), f)):
            os.replace(staging / filename, builder.out / filename)  # evidence first, the package last
            if filename.endswith(PACKAGE_SUFFIX):
                finals.append(builder.out / filename)
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    builder.log_path(name).parent.mkdir(parents=True, exist_ok=True)
    builder.log_path(name).write_bytes(returned.log)
    write_record(builder.out, name, record)
    return finals


def remote_builder(
    address: str, builder: Builder, recipes: Recipes, needs_all: dict[str, set[str]]
) -> tuple[Callable[[str, int], BuildResult], int, Callable[[], None]]:
    """(task for the scheduler, the cluster's thread count as job budget, close)."""
    try:
        from distributed import Client
    except ImportError:
        raise PkgrepoError("--scheduler needs dask.distributed: pip install distributed") from None
    try:
        client = Client(address, timeout=15)
    except (OSError, TimeoutError) as e:
        raise PkgrepoError(f"--scheduler {address}: cannot reach the dask scheduler ({e})") from None
    threads = sum(client.nthreads().values()) or 1

    def closure(name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(needs_all.get(name, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += needs_all.get(n, ())
        return seen

    def task(name: str, share: int) -> BuildResult:
        hit = builder.lookup(recipes[name])
        if hit is not None:
            return hit
        builder.report(f"{name}: sent to {address}")
        job = _job(builder, recipes, name, closure(name), share)
        key = f"pkgrepo-build-{name}-{os.urandom(4).hex()}"
        returned: Returned = client.submit(run_job, job, pure=False, key=key).result()
        if returned.error:
            builder.log_path(name).parent.mkdir(parents=True, exist_ok=True)
            builder.log_path(name).write_bytes(returned.log)
            raise BuildFailed(f"{returned.error} (built on a dask worker; log in {builder.log_path(name)})")
        packages = _accept(builder, name, returned)
        return BuildResult(name, packages, False, returned.seconds, builder.log_path(name))

    return task, threads, client.close
