"""OpenVEX documents: validated against the OpenVEX JSON schema shipped beside this module.

`openvex_json_schema.json` is the OpenVEX project's own schema (v0.2.0, Apache-2.0). On top
of it this project requires a `justification` for every `not_affected` statement (the schema
also admits an impact statement alone); a document that lacks one is refused, naming the file.
A statement applies to a package when a product's `@id` or `identifiers.purl` names that
package's purl (`pkg:generic/pkgrepo/NAME@VERSION?arch=ARCH`) as go-vex matches purls: the
same type, namespace and name; the same version, or none (every version); every qualifier
the statement gives (`arch` above all) equal to the package's; no subpath. A product of
another type (`pkg:npm/...`), another architecture or an unknown qualifier names another
artefact and suppresses nothing. A purl whose qualifiers are ambiguous (one given twice, or
one without a key or a value) is refused with the document, naming the statement.

Documents are read no-follow as regular files of bounded size and nesting (`pkgrepo.safeio`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from packageurl import PackageURL

from pkgrepo.attest.component import Subject
from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.safeio import load_json, shown

if TYPE_CHECKING:
    import jsonschema

SCHEMA = Path(__file__).with_name("openvex_json_schema.json")


@cache
def _validator() -> jsonschema.protocols.Validator:
    """The OpenVEX schema's validator; jsonschema is imported here, as its format checkers cost
    about a second to import and most commands that read VEX never validate a document."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _best_match(errors: Iterable[Any]) -> Any:
    from jsonschema.exceptions import best_match

    return best_match(errors)


@dataclass(frozen=True)
class Statement:
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]  # purls
    status: str
    justification: str | None
    impact: str | None
    action: str | None
    path: Path

    def names(self) -> set[str]:
        return {self.vulnerability, *self.aliases}

    def applies(self, purl: str) -> bool:
        """True when one of the products names the package whose purl is `purl`."""
        if _parsed(purl) is None:
            return False  # a component whose purl does not parse is named by no statement
        return any(_names(p, purl) for p in self.products)


def ambiguity(purl: str) -> str | None:
    """Why `purl` does not name one artefact, or None: a qualifier given twice (in any case) or
    with an empty key or value. `PackageURL.from_string` keeps the last of repeated qualifiers
    and drops empty ones, so `?arch=aarch64&arch=x86_64` would read as x86_64 and `?arch=`
    as every architecture; such a purl is refused instead. A product that is no purl at all
    (another IRI) is not ambiguous: it names nothing of ours."""
    if not purl.lower().startswith("pkg:"):
        return None
    rest = purl.rpartition("#")[0] if "#" in purl else purl  # the purl spec splits from the right
    if "?" not in rest:
        return None
    seen: set[str] = set()
    for pair in rest.rpartition("?")[2].split("&"):
        key, eq, value = pair.partition("=")
        key = unquote(key).strip().lower()
        if not (eq and key and unquote(value)):
            return f"has a qualifier without a key or a value ({pair[:40]!r})"
        if key in seen:
            return f"gives the qualifier {key!r} more than once"
        seen.add(key)
    return None


@lru_cache(maxsize=1 << 16)
def _parsed(purl: str) -> PackageURL | None:
    """`purl` parsed (None: it does not parse), once: a scan asks each statement about each
    package, and parsing is most of what that costs. Only read, never changed."""
    try:
        return PackageURL.from_string(purl)
    except ValueError:
        return None


@lru_cache(maxsize=1 << 16)
def _names(product: str, purl: str) -> bool:
    """Does the statement's `product` name the package whose purl is `purl` (which parses)?"""
    ours, theirs = _parsed(purl), _parsed(product)
    if ambiguity(product) is not None or ours is None or theirs is None:
        return False
    same = (theirs.type, theirs.namespace, theirs.name) == (ours.type, ours.namespace, ours.name)
    qualifiers = theirs.qualifiers if isinstance(theirs.qualifiers, dict) else {}
    return (
        same
        and theirs.version in (None, ours.version)
        and not theirs.subpath
        and all((ours.qualifiers or {}).get(k) == v for k, v in qualifiers.items())
    )


def _require_justification(path: Path, data: object) -> None:
    statements = data.get("statements") if isinstance(data, dict) else None
    for i, s in enumerate(statements if isinstance(statements, list) else []):
        if isinstance(s, dict) and s.get("status") == "not_affected" and "justification" not in s:
            raise BadInput(
                f"{path}: statements[{i}] is not_affected without a justification; add one of the "
                "OpenVEX justifications (e.g. vulnerable_code_not_in_execute_path)"
            )


def _parse(path: Path, data: dict) -> list[Statement]:
    out = []
    for i, s in enumerate(data["statements"]):
        products = tuple(
            (p.get("identifiers") or {}).get("purl") or p.get("@id", "") for p in s.get("products", [])
        )
        for j, purl in enumerate(products):
            if (why := ambiguity(purl)) is not None:
                raise BadInput(
                    f"{shown(path)}: statements[{i}].products[{j}]: purl {purl[:120]!r} {why}; "
                    "a purl names one artefact: give each qualifier once, with a value"
                )
        out.append(
            Statement(
                s["vulnerability"]["name"],
                tuple(s["vulnerability"].get("aliases", [])),
                products,
                s["status"],
                s.get("justification"),
                s.get("impact_statement"),
                s.get("action_statement"),
                path,
            )
        )
    return out


def load_vex(directory: Path) -> list[Statement]:
    """Every statement of every `*.json` document in `directory` (none when it does not exist)."""
    out: list[Statement] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        data = load_json(path, "VEX document")
        _require_justification(path, data)
        error = _best_match(_validator().iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "document"
            raise BadInput(f"{path}: not a valid OpenVEX document at {where}: {error.message}")
        out += _parse(path, data)
    return out


def fixed_document(subject: Subject, proven: dict[str, frozenset[str]]) -> bytes:
    """An OpenVEX document with one `fixed` statement per vulnerability id that a component of
    `subject` declares fixed *and* its signed provenance proves (`proven[name]`), validated
    against the OpenVEX schema; deterministic (timestamp the subject's `created`)."""
    by_id: dict[str, list[str]] = {}
    for c in sorted(subject.components, key=lambda c: c.name):
        for ident in sorted(set(c.fixes) & proven.get(c.name, frozenset())):
            by_id.setdefault(ident, []).append(c.purl)
    stamp = datetime.fromtimestamp(subject.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statements = [
        {
            "vulnerability": {"name": ident},
            "products": [{"@id": p, "identifiers": {"purl": p}} for p in purls],
            "status": "fixed",
            "timestamp": stamp,
        }
        for ident, purls in sorted(by_id.items())
    ]
    body = json.dumps(statements, sort_keys=True).encode()
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": f"https://openvex.dev/docs/pkgrepo/{subject.kind}/{subject.name}-"
        + hashlib.sha256(body).hexdigest()[:32],
        "author": "pkgrepo",
        "timestamp": stamp,
        "version": 1,
        "statements": statements,
    }
    error = _best_match(_validator().iter_errors(doc))
    if error is not None:  # a bug here, not bad input
        raise PkgrepoError(f"OpenVEX document for {subject.name} is not valid: {error.message}")
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
