"""A shared build cache: the packages of a build, found by the cache key of its inputs.

Before building, the builder asks each cache named by `--cache-from` for the
build's key (the digest of every input: recipe, patches, build-dependency
packages, host toolchain); a hit puts that build's packages (and their SBOMs
and provenance) into the packages directory instead of building. Two kinds:

- a directory (`--cache-from DIR`, also what `--cache-to DIR` fills):
  `keys/<key>.json` lists the build's files by sha256, `blobs/<sha256>` holds
  them; every file is checked against its digest when taken.
- a signed repository (`--cache-from URL` with `--trust ROOT`): every package
  whose `origin` is the recipe and whose published provenance names the key
  (its `invocationId`: a package does not carry its build key, so a rebuild
  from other inputs with the same output is the same file), downloaded
  through the verifying client, so nothing unsigned is used.

A cache is a source of packages, so a hit is trusted only as far as its signed
provenance (`check_hit`): each package must carry a DSSE envelope signed by a
key trusted for that cache, whose statement names the package's sha256, the
build key and the recipe; its SBOM sidecars must be the ones its own manifest
lists. Whoever can write into a directory cache can forge a consistent entry,
so the digests alone prove nothing. The keys trusted for a directory cache
(`trusted_keys`): this user's own provenance key, every `--trust-cache-key PUB`
and every `*.pub` in `~/.config/pkgrepo/cache-keys/`. A repository cache adds
the provenance keys the repository itself publishes as signed targets
(`keys/provenance-KEYID.pub`), as `pkgrepo verify --repo` does.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from securesystemslib.signer import Key

from pkgrepo.attest import dsse
from pkgrepo.attest.evidence import PUBLIC_KEY, SUFFIXES
from pkgrepo.attest.provenance import Provenance
from pkgrepo.digest import sha256_file
from pkgrepo.errors import BadInput
from pkgrepo.package.archive import read_head
from pkgrepo.package.extract import own_sboms
from pkgrepo.package.meta import PACKAGE_SUFFIX, canonical_json
from pkgrepo.paths import default_config
from pkgrepo.repo.keys import KeyStore
from pkgrepo.safeio import EVIDENCE_BYTES, parse_json, read_regular


class BuildCache(Protocol):
    label: str

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        """The build's files copied into `into` (packages and their sidecars), or None on a miss."""
        ...

    def key_for(self, keyid: str) -> Key | None:
        """The provenance key with this id if it is trusted for this cache, else None."""
        ...

    def trusted(self) -> str:
        """The trusted keys, as an error line names them."""
        ...


DIGEST = re.compile(r"^[0-9a-f]{64}$")
ENTRY_BYTES = 1 * 2**20  # a cache entry lists a handful of file names and digests
BLOB_BYTES = 4 * 2**30  # the largest package (CPython) is under 100 MiB


def trusted_keys_dir() -> Path:
    """Where a user lists the provenance keys trusted for every directory build cache."""
    return default_config() / "cache-keys"


def trusted_keys(extra: Iterable[Path] = ()) -> dict[str, Key]:
    """The keys trusted for a directory build cache: this user's own provenance key (when it
    exists), the `*.pub` files of `trusted_keys_dir()` and `extra` (`--trust-cache-key`)."""
    keys: dict[str, Key] = {}
    store = KeyStore(dsse.default_key_dir())
    if store.path(dsse.ROLE).is_file():
        own = store.load(dsse.ROLE).public_key
        keys[own.keyid] = own
    listed = trusted_keys_dir()
    for path in [*sorted(listed.glob("*.pub")), *extra] if listed.is_dir() else list(extra):
        key = dsse.load_public_key(path)
        keys[key.keyid] = key
    return keys


def _names(keys: dict[str, Key]) -> str:
    return ", ".join(k[:16] for k in sorted(keys)) or "none"


def check_hit(cache: BuildCache, recipe: str, key: str, files: Sequence[Path]) -> Key:
    """Raise BadInput unless every package of a cache hit carries provenance signed by a key
    trusted for `cache` that attests its sha256, `key` and `recipe`, and its SBOM sidecars are
    the ones its manifest lists. Returns the key that signed (the last package's)."""
    by_name = {f.name: f for f in files}
    signer: Key | None = None
    for pkg in (f for f in files if f.name.endswith(PACKAGE_SUFFIX)):
        where = f"{cache.label}: {pkg.name}"
        prov_file = by_name.get(pkg.name + ".intoto.json")
        if prov_file is None:
            raise BadInput(
                f"{where}: no provenance; a build cache hit must be signed by a key trusted for "
                f"this cache ({cache.trusted()}); rebuild with --force or drop the cache"
            )
        env = dsse.read_envelope(prov_file, read_regular(prov_file, "provenance"))
        keys = [k for k in map(cache.key_for, sorted(env.signatures)) if k is not None]
        if not keys:
            signed = _names(dict.fromkeys(env.signatures)) if env.signatures else "nobody"
            raise BadInput(
                f"{where}: provenance signed by {signed}, not by a key trusted for this cache "
                f"({cache.trusted()}); pass --trust-cache-key PUB if you trust its builder "
                "(docs/build-farm.md)"
            )
        for k in keys:
            dsse.verify(prov_file, env, k)
        signer = keys[0]
        prov = Provenance.from_statement(
            prov_file, parse_json(env.payload, prov_file, "signed provenance payload")
        )
        digest = sha256_file(pkg)
        if not any(s.sha256 == digest for s in prov.subjects):
            raise BadInput(f"{where}: its sha256 {digest[:12]} is not what its signed provenance attests")
        if prov.build_key != key or Path(prov.recipe_path).stem != recipe:
            raise BadInput(
                f"{where}: its signed provenance is of recipe {prov.recipe_path} with build key "
                f"{prov.build_key[:12]}, not of {recipe} with {key[:12]}"
            )
        info, manifest = read_head(pkg)
        listed = {e.path: e.sha256 for e in manifest}
        for rel, suffix in zip(own_sboms(info.name), SUFFIXES, strict=False):
            sidecar = by_name.get(pkg.name + suffix)
            if sidecar is not None and sha256_file(sidecar) != listed.get(rel):
                raise BadInput(f"{where}: {sidecar.name} is not the SBOM the package holds")
    if signer is None:
        raise BadInput(f"{cache.label}: the hit holds no package")
    return signer


class DirectoryCache:
    def __init__(self, directory: Path, keys: dict[str, Key] | None = None):
        self.directory = Path(directory)
        self.label = str(directory)
        self.keys = dict(keys or {})

    def key_for(self, keyid: str) -> Key | None:
        return self.keys.get(keyid)

    def trusted(self) -> str:
        return f"trusted: {_names(self.keys)}"

    def _entry(self, key: str) -> Path:
        return self.directory / "keys" / f"{key}.json"

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        entry = self._entry(key)
        try:
            data = parse_json(
                read_regular(entry, "build cache entry", ENTRY_BYTES), entry, "build cache entry"
            )
        except FileNotFoundError:
            return None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("recipe") != recipe or not isinstance(files, dict):
            return None
        packages = {n for n in files if isinstance(n, str) and n.endswith(PACKAGE_SUFFIX)}
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
                data_ = read_regular(blob, "build cache blob", BLOB_BYTES)
            except FileNotFoundError:
                return None
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
    def __init__(self, url: str, trust: Path | None, keys: dict[str, Key] | None = None):
        from pkgrepo.repo.client import open_client

        self.client = open_client(url, trust)
        self.label = url
        self.keys = dict(keys or {})
        self._entries = None

    def key_for(self, keyid: str) -> Key | None:
        """A key the user trusts, or the repository's own signed provenance key with this id."""
        if keyid in self.keys:
            return self.keys[keyid]
        target = f"keys/provenance-{keyid}.pub"
        if not keyid.isalnum() or not self.client.signs(target):
            return None
        key = dsse.load_public_key(self.client.fetch(target))
        return key if key.keyid == keyid else None

    def trusted(self) -> str:
        return f"trusted: the repository's signed keys/provenance-*.pub, {_names(self.keys)}"

    def _evidence(self, target: str) -> bool | None:
        """None when the repository signs no `target`; False when its signed length is over
        `EVIDENCE_BYTES` (refused from the signed length, before a byte of it is downloaded);
        True when it may be fetched."""
        length = self.client.signed_length(target)
        return None if length is None else length <= EVIDENCE_BYTES

    def _built_with(self, path: str) -> str | None:
        """The build key the published provenance of `path` names, unverified (`check_hit`
        verifies a hit's signature); None when it has none or it is not one."""
        target = path + ".intoto.json"
        if not self._evidence(target):
            return None
        try:
            local = self.client.fetch(target)  # the signed target's bytes (TUF)
            env = dsse.read_envelope(local, read_regular(local, "provenance"))
            statement = parse_json(env.payload, local, "provenance payload")
            return Provenance.from_statement(local, statement).build_key
        except BadInput:
            return None

    def get(self, recipe: str, key: str, into: Path) -> list[Path] | None:
        if self._entries is None:
            self._entries = self.client.entries()
        ours = [e for e in self._entries if e.info.origin == recipe]
        hits = [e for e in ours if self._built_with(e.path) == key]
        versions = {e.info.full_version for e in hits}
        if not hits or any(e.info.full_version in versions and e not in hits for e in ours):
            # a package of that build whose provenance does not name the key (missing, unreadable,
            # another build's): the build is taken whole or not at all
            return None
        sidecars = {e.path: {s: self._evidence(e.path + s) for s in SUFFIXES} for e in hits}
        if any(fits is False for by in sidecars.values() for fits in by.values()):
            return None  # evidence over the bound: taken whole or not at all, and not downloaded
        out = []
        for e in sorted(hits, key=lambda e: e.path):
            name = Path(e.path).name
            shutil.copyfile(self.client.fetch(e.path), into / name)  # verified against signed metadata
            out.append(into / name)
            for suffix, signed in sidecars[e.path].items():
                if signed:
                    shutil.copyfile(self.client.fetch(e.path + suffix), into / (name + suffix))
                    out.append(into / (name + suffix))
        return out


def open_cache(spec: str, trust: Path | None = None, keys: dict[str, Key] | None = None) -> BuildCache:
    """The cache `--cache-from SPEC` names; `keys` are the provenance keys the user trusts for it."""
    if spec.startswith(("http://", "https://")):
        return RepositoryCache(spec, trust, keys)
    if "://" in spec:
        raise BadInput(f"--cache-from {spec!r}: a directory or an http(s) URL of a signed repository")
    if not Path(spec).is_dir():
        raise BadInput(f"--cache-from {spec}: no such directory")
    return DirectoryCache(Path(spec), keys)
