"""Adapter: a Debian `Packages` index (plain, .gz, .xz, .lz4 or .zst).

The first use of an index compiles it into an SQLite file in the cache, keyed
by the digest of the index files: later runs look up only the packages a
request reaches instead of parsing 50 MB of text. Depends and Pre-Depends are
both dependencies; Conflicts and Breaks both forbid co-installation (a fresh
install has no half-configured state for Breaks to allow); `:any` and
`:native` qualifiers are dropped (one architecture); the obsolete `<` and `>`
mean `<=` and `>=`.

Index text is hostile input: every field either parses or raises BadInput
naming the file, package, field and text. A stanza with a malformed field is
skipped and counted (`DebianIndex.skipped`, the first one named), so one bad
stanza does not cost the whole index.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import re
import sqlite3
from functools import cache
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.resolve.deps import Dep
from pkgrepo.resolve.model import Package

SCHEMA = 2
FIELDS = re.compile(
    rb"^(Package|Version|Installed-Size|Depends|Pre-Depends|Provides|Conflicts|Breaks|Filename): *(.*)$", re.M
)
RELATION_FIELDS = ("Pre-Depends", "Depends", "Conflicts", "Breaks")
NAME = r"[A-Za-z0-9][A-Za-z0-9+.\-_]*"
VERSION = r"(?:[0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~\-:]*"
MAX_VERSION = 256  # Debian's longest is under 100; a bound keeps comparisons cheap
_ALT = re.compile(
    rf"^\s*(?P<name>{NAME})(?::[a-z0-9-]+)?\s*"
    rf"(?:\(\s*(?P<op><<|<=|=|>=|>>|<|>)\s*(?P<ver>{VERSION})\s*\))?\s*"
    r"(?:\[[^\[\]]*\]\s*)?(?:<[^<>]*>\s*)*$"
)
SHAPE = "expected NAME[:ARCH] [(OP VERSION)] [[ARCH...]] [<PROFILE...>], OP one of << <= = >= >>"
OLD_OPS = {"<": "<=", ">": ">="}


@cache
def parse_alternative(text: str) -> Dep:
    """One alternative of a relation field, or BadInput naming the text."""
    m = _ALT.match(text)
    if not m:
        why = "an empty relation (a stray ',' or '|')" if not text.strip() else SHAPE
        raise BadInput(f"{text.strip()!r}: {why}")
    ver = m.group("ver")
    if ver is not None and len(ver) > MAX_VERSION:
        raise BadInput(f"{text.strip()[:60]!r}...: a version longer than {MAX_VERSION} characters")
    op = m.group("op")
    return Dep(m.group("name"), OLD_OPS.get(op, op), ver)


def parse_relations(field: str) -> tuple[tuple[Dep, ...], ...]:
    """`a (>= 1) | b, c` -> ((a>=1, b), (c,))"""
    if not field.strip():
        return ()
    return tuple(tuple(parse_alternative(alt) for alt in part.split("|")) for part in field.split(","))


def parse_provides(field: str) -> tuple[tuple[str, str | None], ...]:
    if not field.strip():
        return ()
    out = []
    for part in field.split(","):
        dep = parse_alternative(part)
        out.append((dep.name, dep.version if dep.op == "=" else None))
    return tuple(out)


def parse_size(text: str) -> int:
    """Installed-Size, in KiB, as bytes."""
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise BadInput(f"{text[:40]!r}: not a size in KiB (a whole number of at most 12 digits)")
    return int(text) * 1024


def _check_stanza(f: dict[str, str]) -> None:
    """Raise BadInput naming the first malformed field of a stanza."""
    field = "Package"
    try:
        if not re.fullmatch(NAME, f["Package"]):
            raise BadInput(f"{f['Package'][:60]!r}: not a package name")
        field = "Version"
        if len(f["Version"]) > MAX_VERSION or not re.fullmatch(VERSION, f["Version"]):
            raise BadInput(f"{f['Version'][:60]!r}: not a Debian version")
        field = "Installed-Size"
        parse_size(f.get("Installed-Size") or "0")
        field = "Provides"
        parse_provides(f.get("Provides", ""))
        for field in RELATION_FIELDS:
            parse_relations(f.get(field, ""))
    except BadInput as e:
        raise BadInput(f"{f['Package'][:60]}: {field}: {e}") from None


def read_index_bytes(path: Path) -> bytes:
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the Packages index: {e.strerror}") from None
    try:
        if name.endswith(".gz"):
            return gzip.decompress(raw)
        if name.endswith(".xz"):
            return lzma.decompress(raw)
        if name.endswith(".bz2"):
            return bz2.decompress(raw)
        if name.endswith(".lz4"):
            import lz4.frame

            return lz4.frame.decompress(raw)
        if name.endswith(".zst"):
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except Exception as e:  # every decompressor has its own error class
        raise BadInput(f"{path}: not a readable compressed Packages index ({e})") from None
    return raw


def _compile(paths: list[Path], target: Path) -> None:
    """Parse the index files into an SQLite file; nothing is left behind if this fails."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(tmp)
        try:
            _fill(db, paths)
        finally:
            db.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fill(db: sqlite3.Connection, paths: list[Path]) -> None:
    db.executescript(
        """
        CREATE TABLE pkg (id INTEGER PRIMARY KEY, name TEXT, version TEXT, size INTEGER,
                          depends TEXT, conflicts TEXT, provides TEXT, filename TEXT);
        CREATE TABLE prov (name TEXT, pkg INTEGER);
        CREATE TABLE skipped (count INTEGER, first TEXT);
        """
    )
    seen: set[tuple[str, str]] = set()
    rows, prov = [], []
    skipped, first = 0, ""
    for path in paths:
        for stanza in read_index_bytes(path).split(b"\n\n"):
            f = {k.decode(): v.decode("utf-8", "replace").strip() for k, v in FIELDS.findall(stanza)}
            if "Package" not in f or "Version" not in f:
                continue
            try:
                _check_stanza(f)
            except BadInput as e:  # one bad stanza costs that package, not the index
                skipped += 1
                first = first or f"{path}: {e}"
                continue
            ident = (f["Package"], f["Version"])
            if ident in seen:  # the same package in two indexes (e.g. main and updates)
                continue
            seen.add(ident)
            pid = len(rows) + 1
            depends = ", ".join(x for x in (f.get("Pre-Depends", ""), f.get("Depends", "")) if x)
            conflicts = ", ".join(x for x in (f.get("Conflicts", ""), f.get("Breaks", "")) if x)
            rows.append(
                (
                    pid,
                    f["Package"],
                    f["Version"],
                    parse_size(f.get("Installed-Size") or "0"),
                    depends,
                    conflicts,
                    f.get("Provides", ""),
                    f.get("Filename", ""),
                )
            )
            prov.append((f["Package"], pid))
            for name, _v in parse_provides(f.get("Provides", "")):
                if name != f["Package"]:
                    prov.append((name, pid))
    if not rows:
        why = f" ({skipped} malformed, first: {first})" if skipped else ""
        raise BadInput(f"{paths[0]}: no valid package stanzas found{why}; is this a Debian Packages file?")
    db.executemany("INSERT INTO pkg VALUES (?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO prov VALUES (?,?)", prov)
    db.execute("INSERT INTO skipped VALUES (?,?)", (skipped, first))
    db.execute("CREATE INDEX prov_name ON prov(name)")
    db.commit()


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256(f"schema {SCHEMA}\n".encode())
    for p in paths:
        try:
            st = p.stat()
        except OSError as e:
            raise BadInput(f"{p}: cannot read the Packages index: {e.strerror}") from None
        # path, size and mtime identify an apt list well enough and cost no read
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class DebianIndex:
    def __init__(self, paths: list[Path], cache_dir: Path):
        self.paths = paths
        self.label = "debian:" + ",".join(str(p) for p in paths)
        cache_dir.mkdir(parents=True, exist_ok=True)
        compiled = cache_dir / f"debian-{_digest(paths)}.sqlite"
        if not compiled.exists():
            _compile(paths, compiled)
        self.db = sqlite3.connect(f"file:{compiled}?mode=ro", uri=True)
        self.skipped, self.first_skipped = self.db.execute("SELECT count, first FROM skipped").fetchone()
        self._packages: dict[int, Package] = {}

    def _package(self, row: tuple) -> Package:
        pid, name, version, size, depends, conflicts, provides, filename = row
        pkg = self._packages.get(pid)
        if pkg is None:
            pkg = Package(
                key=f"{name}={version}",
                name=name,
                version=version,
                installed_size=size,
                depends=parse_relations(depends),
                conflicts=tuple(d for clause in parse_relations(conflicts) for d in clause),
                provides=parse_provides(provides),
                location=filename,
            )
            self._packages[pid] = pkg
        return pkg

    def providers(self, name: str) -> list[Package]:
        rows = self.db.execute(
            "SELECT pkg.* FROM prov JOIN pkg ON pkg.id = prov.pkg WHERE prov.name = ? ORDER BY pkg.id",
            (name,),
        ).fetchall()
        return [self._package(r) for r in rows]

    def names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT name FROM pkg")]
