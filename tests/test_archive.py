"""The package format: deterministic bytes, readable metadata, hostile archives refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import libarchive
import libarchive.ffi
import pytest
import zstandard

from pkgrepo.errors import BadInput
from pkgrepo.package.archive import read_head, scan_tree, write_package
from pkgrepo.package.extract import check_package
from tests.helpers.archives import HOSTILE_CASES, INFO, hostile
from tests.helpers.cli import run_cli


def _stage(root: Path, umask: int, mtime: int, reverse: bool) -> None:
    old = os.umask(umask)
    try:
        files = {
            "usr/bin/tool": b"#!/bin/sh\necho hi\n",
            "usr/share/doc/demo/README": b"read me\n",
            "usr/lib/libdemo.so.1": b"\x7fELF-not-really",
        }
        for rel, data in sorted(files.items(), reverse=reverse):
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            os.utime(p, (mtime, mtime))
        (root / "usr/bin/tool").chmod(0o775 & ~umask | 0o100)
        (root / "usr/lib/libdemo.so").symlink_to("libdemo.so.1")
    finally:
        os.umask(old)


def _pack(root: Path, out: Path) -> Path:
    files = [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if not p.is_dir() or p.is_symlink()]
    manifest = scan_tree(root, files)
    info = INFO.replace(installed_size=sum(e.size for e in manifest))
    return write_package(root, manifest, info, out / info.filename)


def test_same_tree_same_bytes(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    _stage(a, 0o022, 1_000, reverse=False)
    _stage(b, 0o077, 2_000_000_000, reverse=True)
    (tmp_path / "oa").mkdir()
    (tmp_path / "ob").mkdir()
    pa, pb = _pack(a, tmp_path / "oa"), _pack(b, tmp_path / "ob")
    assert pa.read_bytes() == pb.read_bytes()


def test_layout_and_show(tmp_path: Path):
    root = tmp_path / "root"
    _stage(root, 0o022, 5, reverse=False)
    pkg = _pack(root, tmp_path)
    with (
        open(pkg, "rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as zr,
        libarchive.stream_reader(zr, "tar", "none") as tar,
    ):
        entries = [(e.pathname, e.uid, e.gid, e.mtime, e.mode & 0o7777) for e in tar]
    names = [e[0].rstrip("/") for e in entries]
    assert names[:2] == [".PKGINFO", ".MANIFEST"]
    assert names[2:] == sorted(names[2:])
    assert all(uid == 0 and gid == 0 and mtime == INFO.build_date for _n, uid, gid, mtime, _m in entries)
    modes = {n.rstrip("/"): m for n, _u, _g, _t, m in entries}
    assert (
        modes["usr/bin/tool"] == 0o755
        and modes["usr/share/doc/demo/README"] == 0o644
        and modes["usr"] == 0o755
    )
    proc = run_cli("show", str(pkg), "--json", check=True)
    shown = json.loads(proc.stdout)
    assert shown["info"]["name"] == "demo" and shown["info"]["installed_size"] > 0
    readme = next(f for f in shown["files"] if f["path"] == "usr/share/doc/demo/README")
    assert readme["sha256"] == hashlib.sha256(b"read me\n").hexdigest()
    link = next(f for f in shown["files"] if f["path"] == "usr/lib/libdemo.so")
    assert link == {
        "path": "usr/lib/libdemo.so",
        "type": "symlink",
        "mode": 0o777,
        "size": 0,
        "target": "libdemo.so.1",
    }
    text = run_cli("show", str(pkg), check=True).stdout
    assert "name: demo" in text and "/usr/lib/libdemo.so -> libdemo.so.1" in text


# --- hostile archives -------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_archive_refused(case: str, tmp_path: Path):
    members, expected = HOSTILE_CASES[case]
    repo = tmp_path / "pkgs"
    repo.mkdir()
    pkg = hostile(repo / "evil-1.0-r1.x86_64.pkg.tar.zst", members)
    with pytest.raises(BadInput, match=expected.replace("(", r"\(")):
        check_package(pkg)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/keep").write_text("keep")
    before = sorted(str(p) for p in root.rglob("*"))
    proc = run_cli("install", "--packages", str(repo), "--root", str(root), "evil")
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert sorted(str(p) for p in root.rglob("*")) == before
    assert not Path("/tmp/passwd").exists() or Path("/tmp/passwd").read_text() != "root::0:0::/:/bin/sh\n"


def test_tampered_payload_refused(tmp_path: Path):
    manifest = [
        {
            "path": "hello",
            "type": "file",
            "mode": 0o644,
            "size": 5,
            "sha256": hashlib.sha256(b"hello").hexdigest(),
        }
    ]
    pkg = hostile(tmp_path / "t.pkg.tar.zst", [{"path": "hello", "data": b"HELLO"}], manifest)
    with pytest.raises(BadInput, match="does not match its sha256"):
        check_package(pkg)


def test_member_outside_manifest_refused(tmp_path: Path):
    pkg = hostile(tmp_path / "t.pkg.tar.zst", [{"path": "extra", "data": b"x"}], manifest=[])
    with pytest.raises(BadInput, match="not in the package manifest"):
        check_package(pkg)


def test_not_a_package(tmp_path: Path):
    bogus = tmp_path / "x.pkg.tar.zst"
    bogus.write_bytes(b"this is not zstd")
    with pytest.raises(BadInput, match="not a valid package archive"):
        read_head(bogus)
    proc = run_cli("show", str(bogus))
    assert proc.returncode == 2 and str(bogus) in proc.stderr
