"""Package metadata (`.PKGINFO`) and the per-file manifest (`.MANIFEST`)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = 1
ARCH = "x86_64"


class PackageInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT
    name: str
    version: str
    epoch: int = 0
    release: int = 1
    arch: str = ARCH
    description: str = ""
    license: str = ""
    homepage: str | None = None
    origin: str = Field(description="Name of the recipe that built this package.")
    depends: list[str] = Field(default_factory=list)
    provides: list[str] = Field(default_factory=list)
    installed_size: int = 0
    build_date: int = Field(0, description="SOURCE_DATE_EPOCH of the build.")
    build_key: str = Field("", description="Digest of every input of the build.")

    @property
    def full_version(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{epoch}{self.version}-r{self.release}"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-r{self.release}.{self.arch}.pkg.tar.zst"

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    type: Literal["file", "dir", "symlink"]
    mode: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None


def canonical_json(data: object) -> bytes:
    """Sorted keys, no spaces, UTF-8, final newline: the same data gives the same bytes."""
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
