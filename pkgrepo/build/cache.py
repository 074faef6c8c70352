"""A shared build cache: the packages of a build, found by the cache key of its inputs.

Before building, the builder asks each cache named by `--cache-from` for the
build's key (the digest of every input: recipe, patches, build-dependency
packages, host toolchain); a hit puts that build's packages (and their SBOMs
and provenance) into the packages directory instead of building. Two kinds:

- a directory (`--cache-from DIR`, also what `--cache-to DIR` fills):
  `keys/<key>.json` lists the build's files by sha256, `blobs/<sha256>` holds
  them; every file is checked against its digest when taken.
- a signed repository (`--cache-from URL` with `--trust ROOT`): every package
  whose `build_key` is the key and whose `origin` is the recipe, downloaded
  through the verifying client, so nothing unsigned is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Protocol

from pkgrepo.attest.evidence import PUBLIC_KEY, SUFFIXES
from pkgrepo.errors import BadInput
from pkgrepo.package.meta import canonical_json


class BuildCache(Protocol):
    label: str

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        """The build's files copied into `into` (packages and their sidecars), or None on a miss."""
        ...


PACKAGE = ".pkg.tar.zst"
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _read_regular(path: Path) -> bytes:
    """A regular file's bytes, the last component opened without following a link (a FIFO never blocks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path}: not a regular file; the build cache is wrong, remove it")
        return f.read()


class DirectoryCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.label = str(directory)

    def _entry(self, key: str) -> Path:
        return self.directory / "keys" / f"{key}.json"

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        entry = self._entry(key)
        try:
            data = json.loads(_read_regular(entry))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise BadInput(f"{entry}: unreadable build cache entry ({e}); remove it") from None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("recipe") != recipe or not isinstance(files, dict):
            return None
        packages = {n for n in files if isinstance(n, str) and n.endswith(PACKAGE)}
        allowed = packages | {p + s for p in packages for s in SUFFIXES} | {PUBLIC_KEY}
        bad = next(
            (
                n
                for n, d in files.items()
                if n not in allowed or "/" in n or not isinstance(d, str) or not DIGEST.match(d)
            ),
            None,
        )
        if bad is not None or not packages:
            raise BadInput(
                f"{entry}: names {bad!r}, not a package of the build or its SBOM or provenance; "
                "the build cache is wrong, remove the entry"
            )
        out = []
        for name, digest in sorted(files.items()):
            blob = self.directory / "blobs" / digest
            try:
                data_ = _read_regular(blob)
            except FileNotFoundError:
                return None
            except OSError as e:
                raise BadInput(f"{blob}: {e.strerror}; the build cache is wrong, remove it") from None
            if hashlib.sha256(data_).hexdigest() != digest:
                raise BadInput(f"{blob}: does not match its sha256; the build cache is damaged, remove it")
            (into / name).write_bytes(data_)
            out.append(into / name)
        return out

    def put(self, recipe: str, key: str, files: list[Path]) -> None:
        """Store a build's files; the entry is written last, so a reader never sees half an entry."""
        (self.directory / "blobs").mkdir(parents=True, exist_ok=True)
        (self.directory / "keys").mkdir(parents=True, exist_ok=True)
        digests = {}
        for f in files:
            with open(f, "rb") as src:
                digest = hashlib.file_digest(src, "sha256").hexdigest()
            blob = self.directory / "blobs" / digest
            if not blob.exists():
                fd, tmp = tempfile.mkstemp(dir=blob.parent, prefix=".in-")
                os.close(fd)
                shutil.copyfile(f, tmp)
                os.replace(tmp, blob)
            digests[f.name] = digest
        fd, tmp = tempfile.mkstemp(dir=self.directory / "keys", prefix=".in-")
        with os.fdopen(fd, "wb") as out:
            out.write(canonical_json({"recipe": recipe, "files": digests}))
        os.replace(tmp, self._entry(key))


class RepositoryCache:
    def __init__(self, url: str, trust: Path | None):
        from pkgrepo.repo.client import open_client

        self.client = open_client(url, trust)
        self.label = url
        self._entries = None

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        if self._entries is None:
            self._entries = self.client.entries()
        hits = [e for e in self._entries if e.info.build_key == key and e.info.origin == recipe]
        if not hits:
            return None
        out = []
        for e in sorted(hits, key=lambda e: e.path):
            name = Path(e.path).name
            shutil.copyfile(self.client.fetch(e.path), into / name)  # verified against signed metadata
            out.append(into / name)
            for suffix in SUFFIXES:
                if self.client.signs(e.path + suffix):
                    shutil.copyfile(self.client.fetch(e.path + suffix), into / (name + suffix))
                    out.append(into / (name + suffix))
        key_target = self._signer_key(out)
        if key_target is not None:
            shutil.copyfile(self.client.fetch(key_target), into / PUBLIC_KEY)
            out.append(into / PUBLIC_KEY)
        return out

    def _signer_key(self, files: list[Path]) -> str | None:
        """The signed target of the key that signed these packages' provenance, if published."""
        for f in files:
            if f.name.endswith(".intoto.json"):
                try:
                    keyid = json.loads(f.read_bytes())["signatures"][0]["keyid"]
                except (ValueError, KeyError, IndexError, TypeError):
                    return None
                target = f"keys/provenance-{keyid}.pub"
                return target if isinstance(keyid, str) and self.client.signs(target) else None
        return None


def open_cache(spec: str, trust: Path | None = None) -> BuildCache:
    if spec.startswith(("http://", "https://")):
        return RepositoryCache(spec, trust)
    if "://" in spec:
        raise BadInput(f"--cache-from {spec!r}: a directory or an http(s) URL of a signed repository")
    if not Path(spec).is_dir():
        raise BadInput(f"--cache-from {spec}: no such directory")
    return DirectoryCache(Path(spec))
