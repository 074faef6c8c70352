"""The build record (`OUT/.builds/NAME.json`): its typed form, its bytes and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pkgrepo.builder.records import (
    BuildRecord,
    move_record,
    read_record,
    record_path,
    remove_record,
    write_record,
)
from pkgrepo.errors import BuildFailed

RECORDS = [
    BuildRecord("0" * 64, ["zlib-1.3.1-r0.pkg.tar.zst", "zlib-dev-1.3.1-r0.pkg.tar.zst"]),
    BuildRecord("f" * 64, ["hello-2.12-r1.pkg.tar.zst"], tested=True),
    BuildRecord("a" * 64, []),
]


@pytest.mark.parametrize("record", RECORDS)
def test_round_trip(record: BuildRecord, tmp_path: Path):
    assert BuildRecord.from_dict(record.to_dict()) == record
    assert BuildRecord.from_bytes(record.to_bytes(), "x") == record
    write_record(tmp_path, "r", record)
    assert read_record(tmp_path, "r") == record


def test_bytes_are_the_ones_earlier_builds_wrote(tmp_path: Path):
    """Packages directories written before the typed record stay cache hits: same keys, same bytes."""
    write_record(tmp_path, "zlib", BuildRecord("k", ["b.pkg.tar.zst", "a.pkg.tar.zst"]))
    assert (
        tmp_path / ".builds" / "zlib.json"
    ).read_bytes() == b'{"key":"k","packages":["b.pkg.tar.zst","a.pkg.tar.zst"]}\n'
    write_record(tmp_path, "zlib", BuildRecord("k", ["a.pkg.tar.zst"], tested=True))
    assert (
        record_path(tmp_path, "zlib").read_bytes()
        == b'{"key":"k","packages":["a.pkg.tar.zst"],"tested":true}\n'
    )
    assert [p.name for p in (tmp_path / ".builds").iterdir()] == ["zlib.json"]  # no temporary left


def test_missing_moved_and_removed(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert read_record(a, "zlib") is None
    write_record(a, "zlib", RECORDS[0])
    move_record(a, b, "zlib")
    assert read_record(a, "zlib") is None and read_record(b, "zlib") == RECORDS[0]
    remove_record(b, "zlib")
    remove_record(b, "zlib")  # already gone: fine
    assert read_record(b, "zlib") is None


@pytest.mark.parametrize("data", [b"", b"[]", b'{"packages": []}', b'{"key": "k"}', b"{not json"])
def test_a_damaged_record_is_named(tmp_path: Path, data: bytes):
    record_path(tmp_path, "zlib").parent.mkdir()
    record_path(tmp_path, "zlib").write_bytes(data)
    with pytest.raises(BuildFailed, match=r"zlib\.json: not a build record .*delete it"):
        read_record(tmp_path, "zlib")
