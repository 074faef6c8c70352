"""Audit an image (an OCI layout or a root filesystem directory) against the hardened-image rules.

Rule ids (one line each in the report):

- `no-shell` (prod): no shell (sh, ash, bash, dash, busybox, ...) on a standard PATH directory
  or the config's PATH, by its name or by the name of the file its links reach;
- `no-package-manager` (prod): no package manager (apk, apt, dpkg, rpm, pip, pkgrepo, ...), alike;
- `non-root` (prod): the image config runs as a numeric, non-zero user (skipped for a directory,
  which has no config);
- `no-setuid`: no regular file with the setuid or setgid bit (a setgid directory only passes its
  group on to new files);
- `no-world-writable`: no world-writable file or directory but /tmp and /var/tmp themselves, which
  must be sticky (a file under them, or reached through them, counts);
- `locked-passwords`: no empty or usable password in /etc/passwd or /etc/shadow (as their links
  resolve inside the root);
- `no-private-keys`: no private-key material in any file: PEM, OpenSSH, DER (PKCS#1, PKCS#8, SEC1),
  base64 of DER without armour, any of them in UTF-16 text, that parses as a key
  (`pkgrepo.image.keys`), in raw bytes (bytecode included) and inside zip archives and gzip, xz
  and bzip2 files;
- `owned-files`: every file and link belongs to a package (the installed-package database) or to
  the base files pkgrepo wrote (their record).

A violation of any rule makes the audit fail (the CLI exits 1, like a failing test).

The rules judge the tree a runtime would see: a layout is unpacked by the one
layout reader (`pkgrepo.image.unpack`: digests checked, names placed and links
resolved inside the root, a budget), a directory is walked without following
links, and paths are then resolved inside the root only. File contents are
streamed in blocks, never held whole.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgrepo.errors import BadInput
from pkgrepo.image.basefiles import RECORD
from pkgrepo.image.keys import KeyScanner, scan_compressed, scan_zip
from pkgrepo.image.layertree import Entry, Tree
from pkgrepo.image.outputs import is_layout
from pkgrepo.image.safeio import BLOCK, open_dir, open_regular, opened
from pkgrepo.image.unpack import unpacked
from pkgrepo.package.rootfs import DB
from pkgrepo.resolve.profiles import Profile
from pkgrepo.safeio import untrusted_json

PATH_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin")
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
SCRATCH = ("tmp", "var/tmp")
MAX_ACCOUNTS = 16 << 20  # bytes of /etc/passwd or /etc/shadow read
MAX_RECORD = 64 << 20  # bytes of the package database or the base-files record read
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
    profile: Profile
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


@dataclass
class _Image:
    """What the rules look at: the tree, where its bytes are, and the config's user and PATH."""

    tree: Tree
    root_fd: int
    user: str | None
    path_dirs: list[str]

    def read(self, rel: str, limit: int) -> bytes | None:
        """A regular file's first `limit` bytes (None when it cannot be read as one)."""
        try:
            with opened(open_regular(self.root_fd, rel, rel)) as fd:
                return os.read(fd, limit)
        except BadInput:
            return None

    def keys(self, rel: str) -> list[str]:
        try:
            fd = open_regular(self.root_fd, rel, rel)
        except BadInput:
            return []
        with os.fdopen(fd, "rb") as f:
            seen: set[bytes] = set()  # a key the raw bytes show is not reported again from inside
            scanner = KeyScanner(seen=seen)
            while block := f.read(BLOCK):
                scanner.feed(block)
            found = scanner.close()
            f.seek(0)
            return found + scan_zip(f, seen=seen) + scan_compressed(f, seen)


def _walk(path: Path) -> Tree:
    """A directory's entries, read with lstat (never through a link)."""
    tree = Tree()
    stack = [(str(path), "")]
    while stack:
        directory, rel = stack.pop()
        with os.scandir(directory) as it:
            found = sorted(it, key=lambda e: e.name)
        for e in found:
            sub = f"{rel}/{e.name}" if rel else e.name
            st = e.stat(follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                tree.entries[sub] = Entry("dir", mode)
                stack.append((e.path, sub))
            elif stat.S_ISLNK(st.st_mode):
                tree.entries[sub] = Entry("symlink", 0o777, 0, os.readlink(e.path))
            elif stat.S_ISREG(st.st_mode):
                tree.entries[sub] = Entry("file", mode, st.st_size)
            else:
                tree.entries[sub] = Entry("other", mode)
    return tree


def _config_path(config: dict[str, Any]) -> list[str]:
    """The runtime's PATH directories: the last `PATH=` wins (as a runtime merges Env), and an
    empty or `.` element is the working directory."""
    conf = config.get("config")
    conf = conf if isinstance(conf, dict) else {}
    env = conf.get("Env", [])
    paths = [
        i[5:] for i in (env if isinstance(env, list) else []) if isinstance(i, str) and i.startswith("PATH=")
    ]
    workdir = conf.get("WorkingDir") if isinstance(conf.get("WorkingDir"), str) else "/"
    out = []
    for d in paths[-1].split(":") if paths else []:
        d = workdir if d in ("", ".") else d if d.startswith("/") else f"{workdir}/{d}"
        out.append(d.strip("/"))
    return out


def _on_path(img: _Image, names: set[str], what: str) -> list[str]:
    """Entries of the PATH directories (as links resolve inside the root) named like, or reaching a
    file named like, one of `names`."""
    tree, seen, out = img.tree, set(), []
    for d in dict.fromkeys([*PATH_DIRS, *img.path_dirs]):
        found = tree.find(d)
        if found is None or found[1].kind != "dir" or found[0] in seen:
            continue
        seen.add(found[0])
        for child in tree.children(found[0]):
            e = tree.entries[child]
            if e.kind == "dir":
                continue
            base = child.rpartition("/")[2]
            reached = tree.find(child)
            via = reached[0] if reached else None
            if base in names or (via and reached[1].kind == "file" and via.rpartition("/")[2] in names):
                shown = f"/{d}/{base}" + (f" (reaches /{via})" if via and via != f"{d}/{base}" else "")
                out.append(f"{shown} is {what}")
    return out


def _passwords(img: _Image) -> list[str]:
    bad = []
    for name, ok in (
        ("etc/passwd", lambda pw: pw in ("x", "*") or pw.startswith("!")),
        ("etc/shadow", lambda pw: pw.startswith(("!", "*"))),
    ):
        found = img.tree.find(name)
        if found is None or found[1].kind != "file":
            continue
        data = img.read(found[0], MAX_ACCOUNTS + 1)
        if data is None:
            continue
        if len(data) > MAX_ACCOUNTS:
            bad.append(f"/{name}: larger than {MAX_ACCOUNTS} bytes; not checked")
            continue
        for line in data.decode(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) < 2 or not line.strip() or line.lstrip().startswith("#"):
                continue
            if not ok(fields[1]):
                why = "empty password" if fields[1] == "" else "usable password"
                bad.append(f"/{name}: {fields[0]} has an {why}")
    return bad


def _owners(img: _Image) -> dict[str, str]:
    """Path -> the package (or the base files) that owns it."""
    owners = {DB: "pkgrepo", RECORD: "base files"}
    for name, key in ((DB, "packages"), (RECORD, "files")):
        found = img.tree.find(name, follow=False)
        raw = img.read(name, MAX_RECORD) if found and found[1].kind == "file" else None
        try:
            data = untrusted_json(raw)[key] if raw else {}
        except (ValueError, KeyError, TypeError):
            continue
        if key == "packages" and isinstance(data, dict):
            for pkg, rec in data.items():
                files = rec.get("files", []) if isinstance(rec, dict) else []
                owners.update(
                    {f: pkg for f in files if isinstance(f, str)} if isinstance(files, list) else {}
                )
        elif isinstance(data, list):
            owners.update({f: "base files" for f in data if isinstance(f, str)})
    return owners


def _judge(img: _Image) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {r: [] for r in RULES}
    found["no-shell"] = _on_path(img, SHELLS, "a shell")
    found["no-package-manager"] = _on_path(img, PACKAGE_MANAGERS, "a package manager")
    owners = _owners(img)
    for rel, e in img.tree.entries.items():
        if rel == "":
            continue
        shown = "/" + rel
        if e.kind in ("file", "symlink") and rel not in owners:
            found["owned-files"].append(f"{shown} belongs to no package and is not a base file")
        if e.kind == "other":
            found["owned-files"].append(f"{shown} is a device, FIFO or socket")
        if e.kind == "file" and e.mode & 0o6000:
            found["no-setuid"].append(f"{shown} has mode {e.mode:04o}")
        exempt = rel in SCRATCH and e.mode & 0o1000  # the sticky scratch directories only
        if e.kind in ("file", "dir") and e.mode & 0o002 and not exempt:
            found["no-world-writable"].append(f"{shown} is world-writable ({e.mode:04o})")
        if e.kind == "file":
            for kind in img.keys(rel):
                owner = owners.get(rel)
                found["no-private-keys"].append(
                    f"{shown} holds private-key material ({kind})" + (f" (from {owner})" if owner else "")
                )
    found["locked-passwords"] = _passwords(img)
    return found


def audit(path: Path, profile: Profile | None = None) -> AuditReport:
    """Audit a layout or a root directory with the rules of `profile` (default prod: an image's own
    profile annotation is the image's word, so it never lowers the rules by itself)."""
    if path.is_dir() and is_layout(path):
        with unpacked(path) as (image, tree):
            assert tree.root is not None
            with opened(open_dir(None, str(tree.root), str(path))) as fd:
                found = _judge(_Image(tree, fd, image.user, _config_path(image.config)))
        user = image.user
    elif path.is_dir():
        with opened(open_dir(None, str(path), str(path))) as fd:
            found = _judge(_Image(_walk(path), fd, None, []))
        user = None
    else:
        raise BadInput(f"{path}: not an OCI image layout or a root filesystem directory")
    profile = profile or "prod"
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
