"""Check packages and installed roots against their signed provenance.

`verify_package` and `verify_rootfs` return one line per failure (empty: verified). Where
provenance and keys come from is an `EvidenceSource` at the edge: files beside the package
or in a directory, or the verifying repository client.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from securesystemslib.signer import Key

from pkgrepo.attest import dsse
from pkgrepo.attest.component import Component, installed_digest
from pkgrepo.attest.provenance import Provenance, content_subject
from pkgrepo.digest import sha256_file
from pkgrepo.errors import BadInput
from pkgrepo.package.archive import read_info
from pkgrepo.package.extract import SBOM_DIR
from pkgrepo.package.meta import ARCH, PACKAGE_SUFFIX
from pkgrepo.package.rootfs import installed_in
from pkgrepo.recipe.load import load_recipe
from pkgrepo.repo.client import RepoClient
from pkgrepo.safeio import parse_json, read_regular, shown


class EvidenceSource(Protocol):
    def provenance(self, filename: str) -> tuple[Path, bytes]:
        """(where, bytes) of the provenance of a package file name; BadInput when there is none."""

    def key(self, keyid: str) -> Key:
        """The trusted provenance public key with this id; BadInput when there is none."""

    def package(self, filename: str) -> Path:
        """The package file itself (its bytes are checked against the provenance by the caller);
        BadInput when there is none."""


@dataclass
class LocalEvidence:
    """Provenance from a file or directory (default: beside the package), a key from a file."""

    trusted: Key
    where: Path  # a provenance file, or a directory of them

    def provenance(self, filename: str) -> tuple[Path, bytes]:
        # anything but a directory is the file itself (a FIFO is then refused, not walked into)
        path = (self.where / f"{filename}.intoto.json") if self.where.is_dir() else self.where
        try:
            return path, read_regular(path, "provenance")  # no-follow, regular, bounded
        except FileNotFoundError:
            raise BadInput(
                f"{path}: no provenance for {filename} (no such file); pass --provenance FILE|DIR"
            ) from None

    def key(self, keyid: str) -> Key:
        return self.trusted

    def package(self, filename: str) -> Path:
        path = (self.where if self.where.is_dir() else self.where.parent) / filename
        if not path.is_file() or path.is_symlink():
            raise BadInput(f"{path}: no package file beside its provenance")
        return path


def package_filename(name: str, version: str, arch: str = ARCH) -> str:
    return f"{name}-{version.split(':', 1)[-1]}.{arch}{PACKAGE_SUFFIX}"


def _open(where: Path, data: bytes, source: EvidenceSource) -> Provenance:
    env = dsse.read_envelope(where, data)
    if not env.signatures:
        raise BadInput(f"{where}: provenance is not signed")
    keyid = next(iter(env.signatures))
    dsse.verify(where, env, source.key(keyid))
    statement = parse_json(env.payload, where, "signed provenance payload")
    return Provenance.from_statement(where, statement)


def _check_recipe(where: Path, prov: Provenance, origin: str, recipes: Path) -> list[str]:
    if Path(prov.recipe_path).stem != origin:
        return [f"{where}: provenance is for recipe {prov.recipe_path}, the package was built from {origin}"]
    path = recipes / prov.recipe_path
    if not path.is_file():
        return [f"{where}: recipe {prov.recipe_path} is not in {recipes}"]
    problems = []
    if sha256_file(path) != prov.recipe_sha256:
        problems.append(
            f"{where}: recipe {path} has changed since the build (sha256 differs from the provenance)"
        )
    recipe = load_recipe(path)
    from pkgrepo.attest.component import SourceRef

    wanted = {(s.uri, s.sha256) for s in map(SourceRef.from_recipe, recipe.sources)}
    got = {(d.uri, d.sha256) for d in prov.by_name("source")}
    for uri, sha in sorted(wanted ^ got):
        side = "recipe" if (uri, sha) in wanted else "provenance"
        problems.append(f"{where}: source {uri} sha256 {sha[:12]} is only in the {side}")
    for p in recipe.patches:
        patch = (path.parent / p.file).resolve()
        recorded = [d.sha256 for d in prov.by_name(f"patch:{p.file}")]
        if not patch.is_file() or recorded != [sha256_file(patch)]:
            problems.append(f"{where}: patch {p.file} differs from the one the build used")
    return problems


def verify_package(pkg: Path, source: EvidenceSource, recipes: Path | None) -> list[str]:
    info = read_info(pkg)
    try:
        where, data = source.provenance(pkg.name)
        prov = _open(where, data, source)
    except BadInput as e:
        return [str(e)]
    problems = []
    digest = sha256_file(pkg)
    if not any(s.sha256 == digest for s in prov.subjects):
        problems.append(
            f"{where}: no subject has {pkg.name}'s sha256 {digest[:12]}; it is the provenance of "
            f"{prov.subjects[0].name if prov.subjects else 'nothing'}"
        )
    if recipes is not None:
        problems += _check_recipe(where, prov, info.origin, recipes)
    return problems


def verify_rootfs(rootfs: Path, source: EvidenceSource, recipes: Path | None) -> list[str]:
    db = installed_in(rootfs)
    if not db:
        raise BadInput(
            f"{rootfs}: no installed packages recorded (var/lib/pkgrepo/installed.json); pass a root"
        )
    problems = []
    for name, rec in sorted(db.items()):
        filename = package_filename(name, rec.version)
        try:
            where, data = source.provenance(filename)
            prov = _open(where, data, source)
        except BadInput as e:
            problems.append(f"{name}: {e}")
            continue
        wanted = content_subject(name, rec.version)
        recorded = [s.sha256 for s in prov.subjects if s.name == wanted]
        if recorded != [installed_digest(rootfs, rec.files)] and not _kept_from(
            rootfs, list(rec.files), prov, source, filename
        ):
            problems.append(f"{name}: installed files differ from what {where} attests ({wanted})")
        if recipes is not None:
            problems += [f"{name}: {p}" for p in _check_recipe(where, prov, rec.origin or name, recipes)]
    return problems


@dataclass
class RepoEvidence:
    """Provenance and the provenance key as targets of a signed repository, fetched verified."""

    client: RepoClient

    def provenance(self, filename: str) -> tuple[Path, bytes]:
        path = self.client.fetch(f"packages/{filename}.intoto.json")
        return path, read_regular(path, "provenance")

    def key(self, keyid: str) -> Key:
        if not keyid.isalnum():
            raise BadInput(f"key id {keyid[:40]!r} in the provenance is not a key id")
        path = self.client.fetch(f"keys/provenance-{keyid}.pub")
        key = dsse.load_public_key(path)
        if key.keyid != keyid:
            raise BadInput(f"{path}: key id differs from its name")
        return key

    def package(self, filename: str) -> Path:
        return self.client.fetch(f"packages/{filename}")


PACKAGE_BYTES = 2**30  # the largest package is under 100 MiB
CHUNK = 2**20


def _hashed_copy(package: Path, copy: Path) -> str:
    """The sha256 of `package` (not followed if a link, a regular file of at most
    PACKAGE_BYTES), copied to `copy` as it is read: the copy is the bytes hashed, read once, in
    bounded memory. BadInput when it is not such a file."""
    try:
        fd = os.open(package, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise BadInput(f"{shown(package)}: cannot read package: {e.strerror}") from None
    h, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as src, open(copy, "wb") as dst:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > PACKAGE_BYTES:
            raise BadInput(
                f"{shown(package)}: package is not a regular file of at most {PACKAGE_BYTES} bytes"
            )
        while chunk := src.read(CHUNK):
            size += len(chunk)
            if size > PACKAGE_BYTES:
                raise BadInput(f"{shown(package)}: package grew past {PACKAGE_BYTES} bytes while it was read")
            h.update(chunk)
            dst.write(chunk)
    return h.hexdigest()


def _installed_from(root: Path, files: list[str], prov: Provenance, package: Path) -> bool:
    """Are the files of a package installed in `root` (`files`, as recorded installed) each
    byte for byte a file of `package`, whose sha256 `prov` attests? A prod image drops files a
    package brings (file minimization), so its installed content is not the whole content the
    provenance attests, but every file it keeps is still one the signed build made."""
    from pkgrepo.package.archive import read_head

    with tempfile.TemporaryDirectory(prefix="pkgrepo-kept-") as private:
        # libarchive reads a private copy of the bytes hashed, not the file again: a file
        # swapped after it was hashed cannot hand over another manifest
        copy = Path(private) / package.name
        if _hashed_copy(package, copy) not in {s.sha256 for s in prov.subjects}:
            return False
        _, manifest = read_head(copy)
    made = {e.path: e for e in manifest}
    for rel in files:
        if rel.startswith(SBOM_DIR + "/"):
            continue
        entry, full = made.get(rel), root / rel
        if entry is None:
            return False
        if entry.type == "symlink":
            if not full.is_symlink() or os.readlink(full) != entry.target:
                return False
        elif full.is_symlink() or not full.is_file() or sha256_file(full) != entry.sha256:
            return False
    return True


def _kept_from(root: Path, files: list[str], prov: Provenance, source: EvidenceSource, filename: str) -> bool:
    """`_installed_from` with the package file from `source`; False when there is none."""
    try:
        return _installed_from(root, files, prov, source.package(filename))
    except BadInput:
        return False


def proven_fixes(
    components: list[Component], source: EvidenceSource, root: Path | None = None
) -> dict[str, frozenset[str]]:
    """For each component that declares fixes, the ids its signed provenance's patches fix — only
    when that provenance verifies and attests the component's content: exactly its content
    digest, or (`root`: the root the components are installed in) files installed there that are
    each byte for byte one of the package file the provenance attests."""
    from pkgrepo.attest.scan import proven_fixes as fixes_of

    db = installed_in(root) if root is not None else {}
    out: dict[str, frozenset[str]] = {}
    for c in components:
        if not c.fixes:
            continue
        filename = package_filename(c.name, c.version, c.arch or ARCH)
        try:
            where, data = source.provenance(filename)
            prov = _open(where, data, source)
            whole = [s.sha256 for s in prov.subjects if s.name == content_subject(c.name, c.version)]
            rec = db.get(c.name)
            if whole == [c.content_sha256] or (
                rec is not None
                and rec.version == c.version
                and root is not None
                and _kept_from(root, list(rec.files), prov, source, filename)
            ):
                out[c.name] = fixes_of(prov)
        except BadInput:
            continue
    return out
