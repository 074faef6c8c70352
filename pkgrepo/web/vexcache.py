"""VEX statements for the site, without importing jsonschema at every publish.

Every publish regenerates the site, and the site loads the VEX documents, which
`pkgrepo.attest.vex.load_vex` checks against the OpenVEX schema. That check imports
jsonschema, whose format checkers compile an RFC 3987 grammar at import: 1 to 4 s on
this project's machines, against well under a second for the rest of `pkgrepo
publish`. The statements of a directory that passed are therefore kept in the user's
cache (`$PKGREPO_CACHE/web/vex/KEY.json`), KEY the
digest of every document's name and bytes, the schema and the code that checks them:
the same documents are checked once, and any change to one of them, to the schema or
to the checking code checks them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from pkgrepo.attest import vex
from pkgrepo.attest.vex import Statement, load_vex


def _key(directory: Path) -> str | None:
    """The digest of what decides the statements of `directory`; None when a document cannot
    be read here (load_vex then says which and why)."""
    h = hashlib.sha256()
    try:
        h.update(Path(vex.__file__).read_bytes())
        h.update(vex.SCHEMA.read_bytes())
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            data = path.read_bytes()
            h.update(f"{path}\0{len(data)}\0".encode() + data)
    except OSError:
        return None
    return h.hexdigest()


def _statement(row: list) -> Statement:
    vulnerability, aliases, products, status, justification, impact, action, path = row
    return Statement(
        vulnerability, tuple(aliases), tuple(products), status, justification, impact, action, Path(path)
    )


def load_vex_cached(directory: Path, cache: Path) -> list[Statement]:
    """`load_vex(directory)`, checked once for the same documents (BadInput as load_vex gives it)."""
    key = _key(directory)
    hit = cache / f"{key}.json" if key else None
    if hit is not None and hit.is_file():
        try:
            return [_statement(row) for row in json.loads(hit.read_bytes())]
        except (OSError, ValueError, TypeError):
            pass  # checked again below
    statements = load_vex(directory)
    if hit is not None:
        fields = ("vulnerability", "aliases", "products", "status", "justification", "impact", "action")
        rows = [[*(getattr(s, f) for f in fields), str(s.path)] for s in statements]
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache / f".{hit.name}.{os.getpid()}"
            tmp.write_bytes(json.dumps(rows).encode())
            os.replace(tmp, hit)
    return statements
