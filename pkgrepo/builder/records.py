"""The build record, `OUT/.builds/NAME.json`: which key built which package files of a recipe.

The one module that reads and writes these records (tests/test_architecture.py checks it), so
that the local builder, the dask client and the reproducibility check agree on their shape.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgrepo.errors import BuildFailed
from pkgrepo.package.meta import canonical_json

RECORDS = ".builds"


@dataclass(frozen=True)
class BuildRecord:
    """One recipe's last build in a packages directory: its cache key, its package files by name,
    and whether its `test:` block passed against them."""

    key: str
    packages: list[str] = field(default_factory=list)
    tested: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRecord:
        return cls(key=data["key"], packages=list(data["packages"]), tested=bool(data.get("tested")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "packages": list(self.packages)}
        if self.tested:
            out["tested"] = True
        return out

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> BuildRecord:
        """A record from its file's bytes; `where` names it in the error."""
        try:
            return cls.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError) as e:
            raise BuildFailed(f"{where}: not a build record ({e}); delete it and build again") from None

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())


def record_path(out: Path, name: str) -> Path:
    return out / RECORDS / f"{name}.json"


def read_record(out: Path, name: str) -> BuildRecord | None:
    """The record of recipe `name` in the packages directory `out`, or None when it has none."""
    path = record_path(out, name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return BuildRecord.from_bytes(data, str(path))


def write_record(out: Path, name: str, record: BuildRecord) -> None:
    path = record_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(record.to_bytes())
    os.replace(tmp, path)  # never half-written


def remove_record(out: Path, name: str) -> None:
    record_path(out, name).unlink(missing_ok=True)


def move_record(src: Path, dest: Path, name: str) -> None:
    """Move recipe `name`'s record from the packages directory `src` to `dest`."""
    record_path(dest, name).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(record_path(src, name), record_path(dest, name))
