"""Audit an image (an OCI layout or a root filesystem directory) against the hardened-image rules.

Rule ids (one line each in the report):

- `no-shell` (prod): no shell (sh, ash, bash, dash, busybox, ...) in a bin directory;
- `no-package-manager` (prod): no package manager (apk, apt, dpkg, rpm, pip, pkgrepo, ...);
- `non-root` (prod): the image config runs as a numeric, non-zero user (skipped for a directory,
  which has no config);
- `no-setuid`: no file with the setuid or setgid bit;
- `no-world-writable`: nothing world-writable outside /tmp;
- `locked-passwords`: no empty or usable password in /etc/passwd or /etc/shadow;
- `no-private-keys`: no PEM or OpenSSH private key in any file;
- `owned-files`: every file and link belongs to a package (the installed-package database) or to
  the base files pkgrepo wrote (their record).

A violation of any rule makes the audit fail (the CLI exits 1, like a failing test).
"""

from __future__ import annotations

import gzip
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgrepo.errors import BadInput
from pkgrepo.image.assemble import INSTALLED_DB
from pkgrepo.image.basefiles import RECORD
from pkgrepo.image.oci import read_layout
from pkgrepo.image.outputs import is_layout
from pkgrepo.image.tree import walk

BIN_DIRS = {"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"}
SHELLS = {"sh", "ash", "bash", "dash", "zsh", "ksh", "mksh", "hush", "csh", "tcsh", "fish", "busybox"}
PACKAGE_MANAGERS = {
    "apk",
    "apt",
    "apt-get",
    "dpkg",
    "rpm",
    "yum",
    "dnf",
    "microdnf",
    "opkg",
    "pip",
    "pip3",
    "pkgrepo",
    "zypper",
    "pacman",
}
KEY_MARKERS = (b"-----BEGIN OPENSSH PRIVATE KEY-----", b"PRIVATE KEY-----")
MAX_SCAN = 16 << 20
RULES = (
    "no-shell",
    "no-package-manager",
    "non-root",
    "no-setuid",
    "no-world-writable",
    "locked-passwords",
    "no-private-keys",
    "owned-files",
)
PROD_ONLY = {"no-shell", "no-package-manager", "non-root"}


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, other
    mode: int
    data: bytes = b""


@dataclass(frozen=True)
class Finding:
    rule: str
    status: str  # pass, fail, skip
    findings: list[str] = field(default_factory=list)
    note: str = ""

    def line(self) -> str:
        if self.status == "fail":
            more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
            return f"FAIL {self.rule}: {self.findings[0]}{more}"
        return f"{self.status.upper()} {self.rule}" + (f": {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.rule, "status": self.status, "findings": self.findings, "note": self.note}


@dataclass(frozen=True)
class AuditReport:
    target: str
    profile: str
    rules: list[Finding]

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "profile": self.profile,
            "passed": self.passed,
            "rules": [r.to_dict() for r in self.rules],
        }


def _from_layout(path: Path) -> tuple[dict[str, Entry], str | None, str | None]:
    image = read_layout(path)
    entries: dict[str, Entry] = {}
    for blob in image.layers:
        try:
            with gzip.open(blob) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for m in tar:
                    name = posixpath.normpath(m.name.lstrip("/")).removeprefix("./")
                    base = posixpath.basename(name)
                    if base.startswith(".wh."):
                        gone = posixpath.join(posixpath.dirname(name), base[4:])
                        for k in [k for k in entries if k == gone or k.startswith(gone + "/")]:
                            del entries[k]
                        continue
                    kind = (
                        "dir" if m.isdir() else "symlink" if m.issym() else "file" if m.isreg() else "other"
                    )
                    data = b""
                    if kind == "file" and m.size <= MAX_SCAN:
                        f = tar.extractfile(m)
                        data = f.read() if f else b""
                    entries[name] = Entry(kind, m.mode, data)
        except (OSError, tarfile.TarError, EOFError) as e:
            raise BadInput(f"{blob}: not a readable gzip tar layer ({e})") from None
    return entries, image.config.get("config", {}).get("User", ""), image.profile


def _from_dir(path: Path) -> dict[str, Entry]:
    out = {}
    for rel, node in walk(path, {}).items():
        data = node.read() if node.kind == "file" and node.size <= MAX_SCAN else b""
        mode = node.mode
        if node.kind == "dir":
            mode = (path / rel).lstat().st_mode & 0o7777
        out[rel] = Entry(node.kind, mode, data)
    return out


def _in_bin(path: str, names: set[str]) -> bool:
    return posixpath.dirname(path) in BIN_DIRS and posixpath.basename(path) in names


def _passwords(entries: dict[str, Entry]) -> list[str]:
    bad = []
    for name, ok in (
        ("etc/passwd", lambda pw: pw in ("x", "*") or pw.startswith("!")),
        ("etc/shadow", lambda pw: pw.startswith(("!", "*"))),
    ):
        e = entries.get(name)
        if e is None:
            continue
        for line in e.data.decode(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) < 2 or not line.strip():
                continue
            if not ok(fields[1]):
                why = "empty password" if fields[1] == "" else "usable password"
                bad.append(f"/{name}: {fields[0]} has an {why}")
    return bad


def _owned(entries: dict[str, Entry]) -> set[str]:
    owned = {INSTALLED_DB, RECORD}
    for name, key in ((INSTALLED_DB, "packages"), (RECORD, "files")):
        e = entries.get(name)
        if e is None:
            continue
        try:
            data = json.loads(e.data)[key]
        except (ValueError, KeyError, TypeError):
            continue
        if key == "packages":
            owned.update(f for rec in data.values() for f in rec.get("files", []))
        else:
            owned.update(data)
    return owned


def audit(path: Path, profile: str | None = None) -> AuditReport:
    """Audit a layout or a root directory; the profile defaults to the layout's own, else prod."""
    if path.is_dir() and is_layout(path):
        entries, user, recorded = _from_layout(path)
    elif path.is_dir():
        entries, user, recorded = _from_dir(path), None, None
    else:
        raise BadInput(f"{path}: not an OCI image layout or a root filesystem directory")
    profile = profile or recorded or "prod"
    owned = _owned(entries)
    found: dict[str, list[str]] = {r: [] for r in RULES}
    for rel, e in entries.items():
        shown = "/" + rel
        if e.kind in ("file", "symlink"):
            if _in_bin(rel, SHELLS):
                found["no-shell"].append(f"{shown} is a shell")
            if _in_bin(rel, PACKAGE_MANAGERS):
                found["no-package-manager"].append(f"{shown} is a package manager")
            if rel not in owned:
                found["owned-files"].append(f"{shown} belongs to no package and is not a base file")
        if e.kind == "other":
            found["owned-files"].append(f"{shown} is a device, fifo or socket")
        if e.kind != "symlink" and e.mode & 0o6000:
            found["no-setuid"].append(f"{shown} has mode {e.mode:04o}")
        if e.kind != "symlink" and e.mode & 0o002 and rel != "tmp" and not rel.startswith("tmp/"):
            found["no-world-writable"].append(f"{shown} is world-writable ({e.mode:04o})")
        if e.kind == "file" and any(k in e.data for k in KEY_MARKERS) and b"-----BEGIN " in e.data:
            found["no-private-keys"].append(f"{shown} holds a private key")
    found["locked-passwords"] = _passwords(entries)
    results = []
    for rule in RULES:
        if rule in PROD_ONLY and profile != "prod":
            results.append(Finding(rule, "skip", note=f"not a rule for {profile} images"))
            continue
        if rule == "non-root":
            if user is None:
                results.append(
                    Finding(rule, "skip", note="a directory has no image config; audit the layout")
                )
                continue
            uid = user.partition(":")[0]
            if not uid.isdigit():
                found[rule].append(
                    f"config User {user!r} is not numeric" if uid else "config User is unset (root)"
                )
            elif int(uid) == 0:
                found[rule].append(f"config User {user!r} is root")
        status = "fail" if found[rule] else "pass"
        results.append(Finding(rule, status, sorted(found[rule])))
    return AuditReport(str(path), profile, results)
