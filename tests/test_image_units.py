"""Focused tests of the image room's parts that the CLI tests cover only as a whole: the layer
rule and tar bytes, file minimization, base files and the spec's path entries."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pkgrepo.image.basefiles import base_files, write_base_files
from pkgrepo.image.layers import group_packages, layer_tar, plan_layers
from pkgrepo.image.minimize_files import glob_re, matches, minimize_files
from pkgrepo.image.spec import parse_spec
from pkgrepo.image.tree import Node, walk


@pytest.mark.parametrize(
    ("order", "budget", "groups"),
    [
        (["a", "b", "c"], 5, [["a"], ["b"], ["c"]]),
        (["a", "b", "c"], 3, [["a"], ["b"], ["c"]]),
        (["a", "b", "c", "d"], 3, [["a"], ["b"], ["c", "d"]]),  # the top of the order shares the last
        (["a", "b"], 1, [["a", "b"]]),
        (["a"], 0, []),
        ([], 4, []),
    ],
)
def test_group_packages(order: list[str], budget: int, groups: list[list[str]]):
    assert group_packages(order, budget) == groups


def _tree(tmp_path: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> dict[str, Node]:
    root = tmp_path / "root"
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return walk(root, {})


def test_plan_layers_by_owner_with_the_rest_on_top(tmp_path: Path):
    tree = _tree(tmp_path, {"lib/libz.so": b"z", "bin/sh": b"sh", "etc/passwd": b"root"}, ("empty",))
    owners = {"lib/libz.so": "zlib", "bin/sh": "busybox"}
    plans = plan_layers(tree, owners, [["zlib"], ["busybox"]], "base files", {"zlib": "1", "busybox": "2"})
    assert [(p.title, sorted(p.paths)) for p in plans] == [
        ("zlib 1", ["lib/libz.so"]),
        ("busybox 2", ["bin/sh"]),
        ("base files", ["empty", "etc/passwd"]),  # unowned files and empty directories
    ]
    # what an identical lower image already has is not repeated above it
    again = plan_layers(
        tree, owners, [["zlib"], ["busybox"]], "top", {"zlib": "1", "busybox": "2"}, below=tree
    )
    assert [(p.title, p.paths) for p in again] == [("top", [])]


def test_layer_tar_is_deterministic_with_parents_and_numeric_owners(tmp_path: Path):
    tree = _tree(tmp_path, {"usr/bin/tool": b"#!/bin/sh\n"})
    data = layer_tar(tree, ["usr/bin/tool"], 1_700_000_000)
    assert layer_tar(tree, ["usr/bin/tool"], 1_700_000_000) == data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["usr", "usr/bin", "usr/bin/tool"]
        assert {(m.mtime, m.uname, m.gname) for m in members} == {(1_700_000_000, "", "")}
        assert tar.extractfile("usr/bin/tool").read() == b"#!/bin/sh\n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("usr/share/doc/**", "usr/share/doc/zlib/README", True),
        ("**/*.a", "usr/lib/libz.a", True),
        ("**/*.a", "libz.a", True),
        ("*.a", "usr/lib/libz.a", False),  # `*` stays within one component
        ("/etc/ss?", "etc/ssl", True),
        ("usr/include/**", "usr/include2/x.h", False),
    ],
)
def test_globs(pattern: str, path: str, hit: bool):
    assert bool(glob_re(pattern).match(path)) == hit


def test_matches_a_parent_directory():
    assert matches("usr/share/man/man1/ls.1", ["usr/share/man"]) == "usr/share/man"
    assert matches("usr/bin/ls", ["usr/share/man", "etc"]) is None


def test_minimize_files_drops_by_glob_keeps_what_keep_names_and_prunes_empty_dirs(tmp_path: Path):
    root = tmp_path / "root"
    files = {
        "usr/share/doc/zlib/README": b"x" * 10,
        "usr/share/doc/keepme/NOTICE": b"y" * 3,
        "usr/include/zlib.h": b"h",
        "etc/zlib.conf": b"c",
        "etc/hosts": b"127.0.0.1 localhost\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    report = minimize_files(
        root, {"zlib": list(files)}, {"zlib"}, ["usr/share/doc/keepme/**"], ["etc/*.conf"]
    )
    assert [(r.path, r.package, r.size, r.reason) for r in report.removed] == [
        ("etc/zlib.conf", "zlib", 1, "etc/*.conf"),
        ("usr/include/zlib.h", "zlib", 1, "usr/include/**"),
        ("usr/share/doc/zlib/README", "zlib", 10, "usr/share/doc/**"),
    ]
    assert report.bytes_saved == 12
    assert (root / "usr/share/doc/keepme/NOTICE").exists()
    assert not (root / "usr/share/doc/zlib").exists() and not (root / "usr/include").exists()
    assert (root / "etc/hosts").exists()  # a directory the removals left non-empty stays
    assert report.to_dict()["removed"][0]["path"] == "/etc/zlib.conf"


SPEC = """name: app
packages: [busybox]
accounts:
  groups: [{name: staff, gid: 50}]
  users: [{name: app, uid: 1000, gid: 50}]
paths:
  - {path: /srv/data, type: directory, owner: "app:staff"}
  - {path: /etc/motd, type: file, content: "hi\\n", mode: "0600"}
  - {path: /usr/bin/sh, type: symlink, target: busybox}
"""


def test_base_files_from_a_spec(tmp_path: Path):
    spec = parse_spec(SPEC, "app.yaml")
    files = {f.path: f for f in base_files(spec, has_os_release=False)}
    assert "app:x:1000:50:app:/home/app:/sbin/nologin\n" in files["etc/passwd"].content.decode()
    assert "staff:x:50:\n" in files["etc/group"].content.decode()
    assert files["etc/shadow"].attrs.mode == 0o600 and b"app:*:" in files["etc/shadow"].content
    assert (files["srv/data"].kind, files["srv/data"].attrs.mode) == ("dir", 0o755)  # spec `directory`
    assert (files["srv/data"].attrs.uid, files["srv/data"].attrs.gid) == (1000, 50)
    assert (files["etc/motd"].kind, files["etc/motd"].attrs.mode, files["etc/motd"].content) == (
        "file",
        0o600,
        b"hi\n",
    )
    assert (files["usr/bin/sh"].kind, files["usr/bin/sh"].target) == ("symlink", "busybox")
    assert b"IMAGE_ID=app" in files["etc/os-release"].content
    assert "etc/os-release" not in {f.path for f in base_files(spec, has_os_release=True)}

    root = tmp_path / "root"
    root.mkdir()
    attrs = write_base_files(root, list(files.values()))
    assert (root / "etc/motd").read_bytes() == b"hi\n" and (root / "usr/bin/sh").readlink() == Path("busybox")
    assert attrs["srv/data"].uid == 1000
