"""The dask client's side of a remote build, without a cluster: the job names the build
dependencies its records list, and what a worker returns is accepted only as its record says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pkgrepo.builder.builder import Builder
from pkgrepo.builder.records import BuildRecord, read_record, write_record
from pkgrepo.builder.remote import Returned, _accept, _job
from pkgrepo.errors import BuildFailed
from pkgrepo.recipe.load import load_recipes
from pkgrepo.source import SourceCache
from tests.helpers.cli import RECIPES

MUSL = "musl-1.2.5-r0.x86_64.pkg.tar.zst"
HELLO = "hello-2.12-r0.x86_64.pkg.tar.zst"


def _returned(files: dict[str, bytes], record: BuildRecord) -> Returned:
    return Returned(
        {n: (hashlib.sha256(d).hexdigest(), d) for n, d in files.items()}, record.to_bytes(), b"log", 1.0
    )


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    out = tmp_path / "out"
    out.mkdir()
    (out / MUSL).write_bytes(b"musl")
    write_record(out, "musl", BuildRecord("k", [MUSL]))
    return Builder(out, SourceCache(tmp_path / "cache"))


def test_a_job_carries_what_the_dependency_records_list(builder: Builder):
    job = _job(builder, load_recipes(RECIPES), "hello", {"musl"}, 1)
    assert job.deps == {MUSL: (hashlib.sha256(b"musl").hexdigest(), b"musl")}
    assert job.recipe == "hello.yaml" and job.recipe in job.files


def test_returned_packages_are_accepted_with_their_record(builder: Builder):
    record = BuildRecord("key", [HELLO])
    finals = _accept(builder, "hello", _returned({HELLO: b"hello", f"{HELLO}.spdx.json": b"{}"}, record))
    assert finals == [builder.out / HELLO] and (builder.out / f"{HELLO}.spdx.json").exists()
    assert read_record(builder.out, "hello") == record
    assert builder.log_path("hello").read_bytes() == b"log"


@pytest.mark.parametrize(
    ("files", "record", "problem"),
    [
        ({HELLO: b"hello"}, BuildRecord("key", ["other.pkg.tar.zst"]), "does not list the packages"),
        ({HELLO: b"hello", "evil.json": b"{}"}, BuildRecord("key", [HELLO]), "odd file name"),
    ],
)
def test_a_worker_that_disagrees_with_its_record_is_refused(
    builder: Builder, files: dict[str, bytes], record: BuildRecord, problem: str
):
    with pytest.raises(BuildFailed, match=problem):
        _accept(builder, "hello", _returned(files, record))
    assert not (builder.out / HELLO).exists() and read_record(builder.out, "hello") is None
