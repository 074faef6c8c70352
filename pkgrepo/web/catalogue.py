"""What the catalogue shows, gathered from the verified repository: packages with their
evidence, advisories with each published package's status, and images.

Everything here comes from a `Verified` view: index entries, the package files'
manifests (read after their sha256 is checked), the signed SBOM and provenance
sidecars, the provenance keys published as targets, and the signed image
records. Advisories and VEX are the project's own data (`repo-data/`), matched
against what is published. The result is plain records, sorted, so the same
repository renders to the same bytes.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgrepo.attest import dsse
from pkgrepo.attest.advisories import Advisory
from pkgrepo.attest.component import Component
from pkgrepo.attest.provenance import Provenance
from pkgrepo.attest.scan import Finding
from pkgrepo.attest.versionkey import version_key
from pkgrepo.attest.vex import Statement
from pkgrepo.errors import BadInput
from pkgrepo.package.meta import FileEntry, PackageInfo
from pkgrepo.repo.index import IndexEntry
from pkgrepo.resolve.deps import meets, parse_dep, parse_provide
from pkgrepo.safeio import untrusted_json
from pkgrepo.web import learnt
from pkgrepo.web.images import PREFIX, read_record
from pkgrepo.web.matching import AdvisoryIndex, Status, component
from pkgrepo.web.verified import Verified

EVIDENCE = {"spdx": ".spdx.json", "cdx": ".cdx.json", "provenance": ".intoto.json"}


Heads = Mapping[str, tuple[PackageInfo, list[FileEntry]]]  # sha256 -> a package's metadata, manifest


@dataclass(frozen=True)
class Patch:
    file: str
    sha256: str | None
    fixes: tuple[str, ...]


@dataclass(frozen=True)
class Provenanced:
    """A provenance's verification state and what it tells, once its signature verifies."""

    state: str  # "verified", or why not
    ok: bool
    builder: str = ""
    recipe: str = ""
    sources: tuple[tuple[str, str], ...] = ()  # (uri, sha256)
    patches: tuple[Patch, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """As JSON, read back by `_provenanced` (`learnt`)."""
        return {
            "state": self.state,
            "ok": self.ok,
            "builder": self.builder,
            "recipe": self.recipe,
            "sources": [list(s) for s in self.sources],
            "patches": [{"file": p.file, "sha256": p.sha256, "fixes": list(p.fixes)} for p in self.patches],
        }


@dataclass(frozen=True)
class Dependency:
    text: str
    providers: tuple[str, ...]  # package names that meet it


@dataclass
class Version:
    entry: IndexEntry
    read_files: Callable[[], list[FileEntry]] = field(repr=False)
    evidence: dict[str, str]  # kind -> target path
    provenance: Provenanced
    depends: list[Dependency] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @functools.cached_property
    def files(self) -> list[FileEntry]:
        """The package's file list, read when its page is rendered (a page reused is not)."""
        return self.read_files()

    @property
    def fixes(self) -> list[str]:
        return sorted({f for p in self.provenance.patches for f in p.fixes})


@dataclass
class Package:
    name: str
    versions: list[Version]  # newest first
    required_by: list[str] = field(default_factory=list)

    @property
    def latest(self) -> Version:
        return self.versions[0]


@dataclass
class AdvisoryPage:
    advisory: Advisory
    slug: str
    statuses: list[Status]


@dataclass
class ImagePage:
    name: str
    record: dict[str, Any]
    target: str
    findings: list[Finding]
    added: list[list[str]]  # packages dev has that prod has not
    dockerfile: str


@dataclass
class Catalogue:
    packages: list[Package]
    advisories: list[AdvisoryPage]
    images: list[ImagePage]
    keys: dict[str, str]  # provenance key id -> target path


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def slug(text: str) -> str:
    """A file name for untrusted text: safe characters kept, the rest replaced."""
    safe = _UNSAFE.sub("_", text)[:100]
    return safe if safe[:1].isalnum() else f"x{safe}"


def _manifest(verified: Verified, entry: IndexEntry, heads: Heads) -> list[FileEntry]:
    """The file list of a signed package: handed over by the publish that read it (`heads`, by
    the sha256 of the bytes read), or read from the package's bytes, checked against the
    signed sha256 first. Only the file-list page of a package new to the site asks for it (a
    page whose package is unchanged is taken from the previous site), so a package is read
    once, not at every publish."""
    from pkgrepo.package.archive import read_head

    head = heads.get(entry.sha256)
    path = verified.local(entry.path)
    if head is None:
        data = verified.read(entry.path)  # the bytes are the signed ones (whole file hashed) ...
        try:
            head = read_head(path, data)  # ... and their head is read from them, not from `path` again
        except BadInput as e:
            raise BadInput(f"{entry.path}: {e}") from None
    info, manifest = head
    if info != entry.info:
        raise BadInput(f"{path}: its .PKGINFO differs from the signed index entry for {entry.path}")
    return manifest


_SEPARATORS = re.compile(r"[\s,]+")


def _fixes(annotations: dict[str, str]) -> tuple[str, ...]:
    return tuple(sorted(set(_SEPARATORS.split(annotations.get("fixes", ""))) - {""}))


def _provenance(target: str, data: bytes, sha256: str, keys: Callable[[str], Any]) -> Provenanced:
    """What the signed provenance `target` (its bytes `data`) tells of the package file of
    `sha256`; `keys(keyid)`: the public key the repository publishes under that id, or None."""
    where = Path(target)
    try:
        env = dsse.read_envelope(where, data)
        keyid = next(iter(env.signatures), "")
        key = keys(keyid)
        if key is None:
            return Provenanced(f"signed by key {keyid[:16]}, which the repository does not publish", False)
        dsse.verify(where, env, key)
        statement = untrusted_json(env.payload)
        prov = Provenance.from_statement(where, statement)
    except (BadInput, ValueError) as e:
        return Provenanced(f"does not verify: {e}", False)
    if not any(s.sha256 == sha256 for s in prov.subjects):
        return Provenanced("signed, but for other bytes than this package file", False)
    builder = statement["predicate"]["runDetails"].get("builder")
    builder = builder if isinstance(builder, dict) else {}
    versions = builder.get("version")
    version = " ".join(f"{k} {v}" for k, v in sorted(versions.items())) if isinstance(versions, dict) else ""
    return Provenanced(
        f"verified: signed by key {keyid[:16]}",
        True,
        f"{builder.get('id', '')} {version}".strip(),
        prov.recipe_path,
        tuple((d.uri or "", d.sha256 or "") for d in prov.by_name("source")),
        tuple(
            Patch(d.name.removeprefix("patch:"), d.sha256, _fixes(d.annotations))
            for d in prov.dependencies
            if d.name.startswith("patch:")
        ),
    )


def _provenanced(data: dict[str, Any]) -> Provenanced:
    """A Provenanced remembered as JSON (`learnt`); TypeError when it is not one."""
    lists = [data["sources"], data["patches"], *(p["fixes"] for p in data["patches"])]
    pairs = [s for s in data["sources"] if isinstance(s, list) and len(s) == 2]
    if not all(isinstance(x, list) for x in lists) or len(pairs) != len(data["sources"]):
        raise TypeError("not a provenance record")  # a string would be taken apart into letters
    patches = tuple(Patch(p["file"], p["sha256"], tuple(p["fixes"])) for p in data["patches"])
    sources = tuple((u, h) for u, h in data["sources"])
    texts = [data["state"], data["builder"], data["recipe"], *(x for s in sources for x in s)]
    texts += [x for p in patches for x in (p.file, *p.fixes)]
    if not isinstance(data["ok"], bool) or not all(isinstance(x, str) for x in texts):
        raise TypeError("not a provenance record")
    if not all(isinstance(p.sha256, str | None) for p in patches):
        raise TypeError("not a provenance record")
    return Provenanced(**{**data, "sources": sources, "patches": patches})


def _dockerfile(name: str, profiles: dict[str, Any]) -> str:
    prod, dev = profiles.get("prod"), profiles.get("dev")
    if prod is None:
        return ""
    workdir = prod.get("workdir") or "/app"
    workdir = "/app" if workdir == "/" else workdir
    lines = [f"# {name}: build in the dev image, run in the prod image, both pinned by digest."]
    lines.append(f"# Push them first: pkgrepo image push DIR REGISTRY/{name}:prod (and :dev).")
    if dev is not None:
        lines += [
            f"FROM REGISTRY/{name}@{dev['digest']} AS build",
            f"WORKDIR {workdir}",
            f"COPY . {workdir}/",
            "",
        ]
    lines.append(f"FROM REGISTRY/{name}@{prod['digest']}")
    if dev is not None:
        lines.append(f"COPY --from=build {workdir}/ {workdir}/")
    if prod.get("user"):
        lines.append(f"USER {prod['user']}")
    lines.append(f"WORKDIR {workdir}")
    if prod.get("entrypoint"):
        lines.append(f"ENTRYPOINT {json.dumps(prod['entrypoint'])}")
    if prod.get("cmd"):
        lines.append(f"CMD {json.dumps(prod['cmd'])}")
    return "\n".join(lines) + "\n"


def _image(
    verified: Verified,
    target: str,
    by_key: dict[tuple[str, str], Version],
    index: AdvisoryIndex,
) -> ImagePage:
    rec = read_record(target, verified.read(target))
    profiles = rec["profiles"]

    def packages(profile: str) -> list[list[str]]:
        p = profiles.get(profile)
        return [pv for layer in p["layers"] for pv in layer["packages"]] if p else []

    prod = {n for n, _ in packages("prod")}
    added = [pv for pv in packages("dev") if pv[0] not in prod] if "prod" in profiles else []
    widest = packages("dev") or packages("prod")
    components, proven = [], {}
    for n, v in sorted(widest):
        known = by_key.get((n, v))  # a published package: its upstream and its proven fixes
        components.append(component(known.entry.info) if known else Component(n, v, "", n, ""))
        if known is not None and known.provenance.ok:
            proven[n] = frozenset(known.fixes)
    findings = index.scan(components, proven)
    return ImagePage(rec["name"], rec, target, findings, added, _dockerfile(rec["name"], profiles))


def _provenanced_of(
    verified: Verified,
    entry: IndexEntry,
    target: str | None,
    keys: Callable[[str], Any],
    memory: learnt.Memory,
    published: str,
) -> Provenanced:
    """`_provenance` of `entry`'s provenance `target`, or what was learnt of the same bytes
    before (`published`: the provenance keys' targets and their signed sha256)."""
    if target is None:
        return Provenanced("no provenance published", False)
    name = learnt.key(entry.sha256, target, verified.targets[target].hashes.get("sha256", ""), published)
    known = memory.get(name, _provenanced)
    if known is not None:
        return known
    try:
        data = verified.read(target)
    except BadInput as e:  # the file, not the signed bytes: not remembered
        return Provenanced(f"does not verify: {e}", False)
    prov = _provenance(target, data, entry.sha256, keys)
    memory.put(name, prov.to_dict())
    return prov


def gather(
    verified: Verified,
    advisories: list[Advisory],
    vex: list[Statement],
    cache: Path | None = None,
    heads: Heads | None = None,
) -> Catalogue:
    """The catalogue of a verified repository (`cache`: the user's web cache, where what was
    learnt of provenance is kept, `learnt.json`; `heads`: package heads a publish read, by the
    sha256 of their bytes)."""
    index = AdvisoryIndex(sorted(advisories, key=lambda a: a.id), vex)
    keys = {}
    for t in verified.targets:
        m = re.fullmatch(r"keys/provenance-([0-9a-f]+)\.pub", t)
        if m:
            keys[m.group(1)] = t
    memory = learnt.Memory(cache / learnt.FILE if cache else None)
    published = repr(sorted((t, verified.targets[t].hashes.get("sha256", "")) for t in keys.values()))

    @functools.cache
    def public_key(keyid: str) -> Any:  # read and parsed once, not once per package
        target = keys.get(keyid)
        return None if target is None else dsse.load_public_key(Path(target), verified.read(target))

    signed = [e for e in verified.entries if verified.targets.get(e.path) is not None]
    signed = [e for e in signed if verified.targets[e.path].hashes.get("sha256") == e.sha256]
    by_name: dict[str, list[Version]] = defaultdict(list)
    for e in signed:
        evidence = {k: e.path + s for k, s in EVIDENCE.items() if e.path + s in verified.targets}
        target = evidence.get("provenance")
        prov = _provenanced_of(verified, e, target, public_key, memory, published)
        read = functools.partial(_manifest, verified, e, heads or {})
        by_name[e.name].append(Version(e, read, evidence, prov))
    memory.save()
    # who could meet a dependency named N: the packages named N and those providing N
    candidates: dict[str, list[tuple[str, str, list[tuple[str, str | None]]]]] = defaultdict(list)
    for e in signed:
        provided = [parse_provide(p) for p in e.info.provides]
        for key in {e.name, *(n for n, _ in provided)}:
            candidates[key].append((e.name, e.info.full_version, provided))
    required_by: dict[str, set[str]] = defaultdict(set)
    statuses: dict[str, list[Status]] = defaultdict(list)
    # packages in name and version order, so that each advisory's statuses come in that order
    for name in sorted(by_name):
        versions = sorted(by_name[name], key=lambda v: version_key(v.entry.info.full_version))
        by_name[name].sort(key=lambda v: version_key(v.entry.info.full_version), reverse=True)
        for v in versions:
            for text in v.entry.info.depends:
                try:
                    dep = parse_dep(text)
                except BadInput:
                    v.depends.append(Dependency(text, ()))
                    continue
                names = sorted(
                    {n for n, ver, prov in candidates.get(dep.name, []) if meets(dep, n, ver, prov)}
                )
                v.depends.append(Dependency(text, tuple(names)))
                for n in names:
                    if n != name:
                        required_by[n].add(name)
            proven = frozenset(v.fixes) if v.provenance.ok else frozenset()
            v.findings, found = index.assess(component(v.entry.info), proven)
            for adv_id, st in found.items():
                statuses[adv_id].append(st)
    packages = [Package(n, by_name[n], sorted(required_by[n])) for n in sorted(by_name)]
    pages, used = [], set()
    for adv in index.advisories:
        s = slug(adv.id)
        while s in used:
            s += "_"
        used.add(s)
        pages.append(AdvisoryPage(adv, s, statuses[adv.id]))
    by_key = {(v.entry.name, v.entry.info.full_version): v for p in packages for v in p.versions}
    images = [
        _image(verified, t, by_key, index)
        for t in sorted(verified.targets)
        if t.startswith(PREFIX) and t.endswith(".json")
    ]
    return Catalogue(packages, pages, images, keys)
