"""Debian's record of security fixes, as OSV advisories in upstream versions.

The input is the `debian/changelog` of Debian source packages — the unstable (mainline)
ones and the stable updates (`+debNuM`, `~debNuM`) — as Debian's archive serves them. Each
CVE id an entry names becomes one OSV record (`DEBIAN-CVE-…`, alias the CVE id) whose
`affected[]` names the *upstream project* by the purl of the recipe that builds it (the
Debian source → recipe map is the recipes' own `sources[].debian.package`) and gives ranges
in **upstream** versions.

What "fixed" means in upstream versions (Debian's version `2.5.0-1+deb12u1` is a Debian
revision of upstream 2.5.0):

- an entry that moves to a new upstream release U and names the CVE: upstream U is fixed;
- an entry that keeps upstream U and names the CVE fixes it with a Debian patch: plain
  upstream U is *not* fixed. The upstream fix is the first newer upstream release in the
  unstable changelog dated on or after that entry; without one the range stays open and
  only a patch (a recipe's `fixes:`) can fix it;
- a new upstream release on a stable branch (openssl 3.0.x in bookworm) closes the range
  of its series (major.minor); the next series starts a new range, up to the next fix.

Ranges always start at 0: a changelog does not say when a flaw was introduced, so every
earlier release counts as affected. Changelogs give no severity; records have none (the scan
treats an unknown severity as failing every `--fail-on`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.resolve.version import compare
from pkgrepo.safeio import read_regular

SOURCE = "debian-changelog"
CONVERTER = 2  # bumped when the conversion changes, so that the revision changes with it
ECOSYSTEM = "upstream"  # affected[].package.ecosystem of a record matched by upstream purl
CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
HEADER_RE = re.compile(r"^(?P<source>[a-z0-9][a-z0-9+.-]+) \((?P<version>[^()\s]+)\)(?P<dists>[^;]*);")
TRAILER_RE = re.compile(r"^ -- .*<[^>]*>\s+(?P<date>\S.*)$")
STABLE_RE = re.compile(r"[+~]deb\d+u\d+")
# "X+reallyY" and "X+0.really.Y" (python-click's 8.2.0+0.really.8.1.8) both mean upstream Y
REALLY_RE = re.compile(r"\+(?:[0-9.]*\.)?really\.?")
TRACKER = "https://security-tracker.debian.org/tracker/"
CVE_ORG = "https://www.cve.org/CVERecord?id="


@dataclass
class Entry:
    source: str
    version: str
    dists: str
    date: datetime
    lines: list[str] = field(default_factory=list)
    new_upstream: bool = False  # this entry moved to a new upstream release

    @property
    def upstream(self) -> str:
        return upstream_version(self.version)

    @property
    def stable(self) -> bool:
        return bool(STABLE_RE.search(self.version))


def upstream_version(debian_version: str) -> str:
    """The upstream release in a Debian version: no epoch, no revision, no repack suffix."""
    v = debian_version.split(":", 1)[-1]
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    if m := REALLY_RE.search(v):
        v = v[m.end() :]
    return re.sub(r"[.+~](dfsg|ds)\d*$", "", v)


def parse_changelog(path: Path, text: str) -> list[Entry]:
    """A debian/changelog's entries, newest first; each entry knows if it moved upstream."""
    entries: list[Entry] = []
    current: Entry | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if m := HEADER_RE.match(line):
            current = Entry(m["source"], m["version"], m["dists"].strip(), datetime.fromtimestamp(0, UTC))
            entries.append(current)
        elif m := TRAILER_RE.match(line):
            if current is None:
                raise BadInput(f"{path}:{n}: a changelog trailer before any entry; not a debian/changelog")
            try:
                current.date = parsedate_to_datetime(m["date"]).astimezone(UTC)
            except (TypeError, ValueError):
                raise BadInput(f"{path}:{n}: trailer date {m['date']!r} is not an RFC 2822 date") from None
            current = None
        elif current is not None and line.strip():
            current.lines.append(line.strip())
    if not entries:
        raise BadInput(
            f"{path}: no changelog entry (`SOURCE (VERSION) DIST; urgency=…`); not a debian/changelog"
        )
    for newer, older in itertools.pairwise(entries):
        newer.new_upstream = compare(newer.upstream, older.upstream) > 0
    entries[-1].new_upstream = True
    return entries


def _summaries(entry: Entry) -> dict[str, str]:
    """Each CVE id an entry names, with the text of the item that names it."""
    items: list[str] = []
    for line in entry.lines:
        if line.startswith(("*", "-", "+")) or not items:
            items.append(line.lstrip("*-+ ").strip())
        else:
            items[-1] += " " + line
    out: dict[str, str] = {}
    for item in items:
        for ident in CVE_RE.findall(item):
            text = _clean(CVE_RE.sub("", item.split(ident, 1)[1]))
            if _short(text):  # "CVE-…, CVE-…)  (Closes: #…)": the whole item says more
                text = _clean(CVE_RE.sub("", item))
            if _short(text):
                text = f"named in Debian's changelog of {entry.source} {entry.version}"
            out.setdefault(ident, text[:240])
    return out


def _short(text: str) -> bool:
    return len(re.sub(r"\W", "", text)) < 12


def _clean(text: str) -> str:
    text = text.strip()
    if m := re.fullmatch(r"-?([\w.+-]+?)-*\.(patch|diff)", text):  # a patch named for its fix
        text = m[1].replace("-", " ")
    text = re.sub(r"\s*\(?\b[Cc]loses:?\s*#?\d+[^)]*\)?", "", text)
    return re.sub(r"\s+", " ", text).strip(" :,;-()\"'.").strip()


def _series(version: str) -> str:
    parts = re.split(r"[.]", version)
    return ".".join(parts[:2])


def _bump(series: str) -> str:
    """The first release of the series after `series` (3.0 → 3.1)."""
    head, _, minor = series.rpartition(".")
    return f"{head}.{int(minor) + 1}" if head and minor.isdigit() else f"{series}.0.1"


@dataclass(frozen=True)
class Input:
    """One changelog the feed was made from."""

    source: str
    version: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "version": self.version, "sha256": self.sha256}


def _later_upstream(e: Entry, line: list[Entry]) -> str | None:
    """The first upstream release newer than `e`'s that `line` (a changelog) moved to after it."""
    later = [
        m.upstream
        for m in line
        if m.new_upstream and m.date >= e.date and compare(m.upstream, e.upstream) > 0
    ]
    return min(later, key=_Key) if later else None


def _fixed_ranges(mentions: list[tuple[Entry, list[Entry]]], mainline: list[Entry]) -> list[dict]:
    """The OSV ranges (upstream versions) of one CVE of one project; see the module's rule.

    `mentions`: each entry that names the CVE with the changelog it is in."""
    candidates: list[str] = []  # mainline upstream releases that carry the fix (lowest wins)
    branch_fixes: list[str] = []  # upstream releases of a stable series that carry it
    for e, log in mentions:
        if e.new_upstream:
            fixes = [e.upstream]
        else:  # a Debian patch: the next upstream release its own line, and unstable, took after it
            fixes = [f for f in {_later_upstream(e, log), _later_upstream(e, mainline)} if f]
        for fix in fixes:
            if e.stable and _series(fix) == _series(e.upstream):
                branch_fixes.append(fix)
            else:
                candidates.append(fix)
    main_fix = min(candidates, key=_Key) if candidates else None
    events: list[dict] = []
    start = "0"
    for fix in sorted(set(branch_fixes), key=_Key):
        if main_fix is not None and (compare(fix, main_fix) >= 0 or _series(fix) == _series(main_fix)):
            main_fix = min(main_fix, fix, key=_Key)
            continue
        if start != "0" and compare(fix, start) < 0:
            continue
        events += [{"introduced": start}, {"fixed": fix}]
        start = _bump(_series(fix))
    if main_fix is not None and start != "0" and compare(main_fix, start) <= 0:
        return [{"type": "ECOSYSTEM", "events": events}]  # the mainline fix predates the last series
    events.append({"introduced": start})
    if main_fix is not None:
        events.append({"fixed": main_fix})
    return [{"type": "ECOSYSTEM", "events": events}]


class _Key:
    def __init__(self, v: str):
        self.v = v

    def __lt__(self, other: _Key) -> bool:
        return compare(self.v, other.v) < 0


def convert(changelogs: list[Path], projects: dict[str, str]) -> tuple[list[dict], dict]:
    """OSV records and the feed's metadata from `changelogs` (paths), for the Debian sources in
    `projects` (Debian source name → upstream purl); other sources are refused."""
    by_source: dict[str, list[list[Entry]]] = {}
    inputs: list[Input] = []
    for path in changelogs:
        data = read_regular(path, "changelog")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{path}: changelog is not UTF-8 text") from None
        entries = parse_changelog(path, text)
        source = entries[0].source
        if source not in projects:
            raise BadInput(
                f"{path}: Debian source {source!r} is built by no recipe (sources[].debian.package); "
                "leave it out or add the recipe"
            )
        by_source.setdefault(source, []).append(entries)
        inputs.append(Input(source, entries[0].version, hashlib.sha256(data).hexdigest()))
    records: dict[str, dict] = {}
    for source, logs in sorted(by_source.items()):
        purl = projects[source]
        mainline = sorted(
            {e.version: e for log in logs for e in log if not e.stable}.values(), key=lambda e: e.date
        )
        seen: dict[str, list[tuple[Entry, list[Entry]]]] = {}
        summaries: dict[str, str] = {}
        for log in logs:
            for e in log:
                for ident, text in _summaries(e).items():
                    if all(x.version != e.version for x, _ in seen.get(ident, [])):
                        seen.setdefault(ident, []).append((e, log))
                    summaries.setdefault(ident, text)
        for ident, mentions in seen.items():
            rec = records.setdefault(
                ident,
                {
                    "schema_version": "1.6.0",
                    "id": f"DEBIAN-{ident}",
                    "aliases": [ident],
                    "summary": summaries[ident],
                    "references": [
                        {"type": "ADVISORY", "url": TRACKER + ident},
                        {"type": "WEB", "url": CVE_ORG + ident},
                    ],
                    "affected": [],
                },
            )
            rec["affected"].append(
                {
                    "package": {"ecosystem": ECOSYSTEM, "name": purl.rsplit("/", 1)[-1], "purl": purl},
                    "ranges": _fixed_ranges(mentions, mainline),
                    "database_specific": {
                        "debian_source": source,
                        "debian_fixed": sorted({e.version for e, _ in mentions}, key=_Key),
                    },
                }
            )
    inputs.sort(key=lambda i: (i.source, i.version))
    revision = hashlib.sha256(
        f"converter {CONVERTER}\n".encode()
        + "".join(f"{i.source} {i.version} {i.sha256}\n" for i in inputs).encode()
    ).hexdigest()
    date = max((e.date for logs in by_source.values() for log in logs for e in log), default=None)
    stamp = date.strftime("%Y-%m-%dT%H:%M:%SZ") if date else "1970-01-01T00:00:00Z"
    out = []
    for ident in sorted(records):
        rec = records[ident]
        rec["modified"] = stamp
        rec["database_specific"] = {"source": SOURCE, "revision": revision}
        out.append(rec)
    meta = {
        "name": SOURCE,
        "source": "the debian/changelog of Debian source packages (unstable and stable updates)",
        "revision": revision,
        "date": stamp,
        "inputs": [i.to_dict() for i in inputs],
        "projects": sorted({projects[s] for s in by_source}),
    }
    return out, meta


def write_feed(out: Path, records: list[dict], meta: dict) -> None:
    """Replace the feed in `out` whole: every record and `feed.json`, then swap directories."""
    import fcntl
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(
        out.parent / f".{out.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
    )
    fcntl.flock(lock, fcntl.LOCK_EX)  # two imports at once: one after the other, never interleaved
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        keep = [p for p in out.iterdir() if p.suffix != ".json"] if out.is_dir() else []
        for p in keep:
            if p.is_file() and not p.is_symlink():
                shutil.copyfile(p, tmp / p.name)
        for rec in records:
            (tmp / f"{rec['id']}.json").write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        (tmp / "feed.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists() or out.is_symlink():
            if out.is_symlink() or not out.is_dir():
                raise BadInput(f"{out}: not a directory; pass --out DIR")
            old = out.with_name(f".{out.name}.old{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(lock)
