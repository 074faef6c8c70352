"""SBOM, provenance and scan of an OCI image layout, read as the root it unpacks to."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tarfile
from pathlib import Path

import pytest

from pkgrepo.attest import dsse
from pkgrepo.errors import BadInput
from pkgrepo.image.unpack import unpack
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.layouts import (
    M,
    installed_db,
    layer_tar,
    manifest_path,
    rewrite_manifest,
    run_bounded,
    store_manifest,
    write_layout,
)


def test_sbom_verify_and_scan_of_a_layout(built: Path, tmp_path: Path):
    layout = tmp_path / "hello"
    run_cli(
        "image",
        "build",
        str(ROOT / "repo-data/images/hello.yaml"),
        "--packages",
        str(built),
        "--out",
        str(layout),
        check=True,
    )
    spdx = json.loads(run_cli("sbom", str(layout), check=True).stdout)
    assert {"hello", "musl"} <= {p["name"] for p in spdx["packages"]}
    proc = run_cli("verify", str(layout), "--provenance", str(built))
    assert proc.returncode == 0 and "provenance verified" in proc.stdout, proc.stderr
    assert run_cli("scan", str(layout)).returncode == 0
    layer = max((layout / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer.write_bytes(layer.read_bytes()[:-8] + b"damaged!")
    proc = run_cli("sbom", str(layout))
    assert proc.returncode == 2 and "does not match its digest" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "members",
    [
        [M("../escape", data=b"x")],
        [M("etc", "symlink", b"/tmp"), M("etc/passwd", data=b"root::0:0::/:/bin/sh\n")],
        [M("a", "symlink", b"../../.."), M("a/b", data=b"x")],
        [M("h", "symlink", b"/etc/hostname"), M("h2", "hardlink", b"h")],
        [M("a", "symlink", b"b"), M("b", "symlink", b"a"), M("a/c", data=b"x")],
        [M("f", data=b"x"), M("f/g", data=b"y")],
        [M("/".join(["d"] * 1500), data=b"x")],
        [M("a/" + "b" * 300, data=b"x"), M("l", "symlink", b"x" * 5000)],
    ],
    ids=[
        "dotdot",
        "through-absolute-link",
        "through-relative-link",
        "hardlink-to-a-host-link",
        "link-loop",
        "file-as-directory",
        "1500-deep",
        "too-long",
    ],
)
def test_hostile_layers_never_write_outside(tmp_path: Path, members):
    """Members are placed as a runtime places them (inside the root) or the image is refused;
    nothing is ever written or linked outside the destination."""
    layout = write_layout(tmp_path / "layout", [members])
    dest = tmp_path / "root"
    dest.mkdir()
    before = _snapshot(tmp_path, skip=dest)
    with contextlib.suppress(BadInput):
        unpack(layout, dest)
    assert _snapshot(tmp_path, skip=dest) == before
    assert not (tmp_path / "escape").exists()
    for p in dest.rglob("*"):
        assert p.is_symlink() or p.resolve().is_relative_to(dest.resolve())


def _snapshot(top: Path, skip: Path | None = None) -> dict[str, tuple[int, int, str]]:
    """Every path below `top` (but `skip`) with its type, size and link target: what an attack could change."""
    out = {}
    for p in sorted(top.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        st = p.lstat()
        out[str(p)] = (st.st_mode, st.st_size if p.is_file() else 0, os.readlink(p) if p.is_symlink() else "")
    return out


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """The 'host' an attacker aims at: a secret, a FIFO and an SBOM-looking canary, inside the test's tree."""
    h = tmp_path / "host"
    h.mkdir()
    (h / "secret").write_text("CANARY-SECRET\n")
    (h / "hello.spdx.json").write_text(json.dumps({"CANARY": "CANARY-SECRET"}))
    os.mkfifo(h / "fifo")
    return h


def _commands(tmp_path: Path, layout: Path) -> list[list[str]]:
    keys = tmp_path / "keys"
    pub = tmp_path / "provenance.pub"
    pub.write_bytes(dsse.public_key_bytes(dsse.signer(keys).public_key))
    return [
        ["sbom", str(layout)],
        ["scan", str(layout)],
        ["verify", str(layout), "--key", str(pub), "--provenance", str(tmp_path)],
        ["image", "audit", str(layout)],
    ]


def _attack(
    tmp_path: Path, layout: Path, host: Path, expect: str, audit_code: int = 2, only: int | None = None
) -> None:
    """Every layout command (or the `only`th, modulo 4) ends in one line (exit 2, naming `expect`),
    within bounds, and leaves the host (everything outside the layout) as it was, its secret never
    printed. The commands share the layout reader, so cases that only reach it rotate through them."""
    commands = _commands(tmp_path, layout)
    if only is not None:
        commands = [commands[only % len(commands)]]
    before = _snapshot(tmp_path)
    for args in commands:
        proc = run_bounded(*args, memory=2 << 30, seconds=60, env={"TMPDIR": str(tmp_path / "tmp")})
        code = audit_code if args[0] == "image" else 2
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert "CANARY" not in proc.stdout + proc.stderr
        if code == 2:
            assert expect in proc.stderr, (args, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _snapshot(tmp_path) == before
    assert not any((tmp_path / "tmp").iterdir())


def _image(tmp_path: Path, db: bytes, *more: list[M]) -> Path:
    base = [M("usr/bin/hello", data=b"hello", mode=0o755), M("var/lib/pkgrepo/installed.json", data=db)]
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return write_layout(tmp_path / "layout", [base, *more])


@pytest.mark.parametrize("where", ["dotdot", "absolute", "fifo"])
def test_a_package_database_naming_host_paths_is_refused(tmp_path: Path, host: Path, where: str):
    named = {
        "dotdot": "../" * 12 + str(host / "secret").lstrip("/"),
        "absolute": str(host / "secret"),
        "fifo": str(host / "fifo"),
    }[where]
    layout = _image(tmp_path, installed_db({"hello": ["usr/bin/hello", named]}))
    _attack(tmp_path, layout, host, "not a plain path inside the root", audit_code=0)


def test_an_sbom_directory_replaced_by_a_link_to_the_host_is_refused(tmp_path: Path, host: Path):
    db = installed_db({"hello": ["usr/bin/hello"]})
    layout = _image(tmp_path, db, [M("var/lib/pkgrepo/sbom", "symlink", str(host).encode())])
    _attack(tmp_path, layout, host, "is reached through a link", audit_code=1)


def test_a_listed_file_reached_through_a_link_to_the_host_is_refused(tmp_path: Path, host: Path):
    db = installed_db({"hello": ["usr/bin/hello", "usr/h/fifo", "usr/h/secret"]})
    layout = _image(tmp_path, db, [M("usr/h", "symlink", str(host).encode())])
    _attack(tmp_path, layout, host, "is reached through a link", audit_code=1)


def _layer_blob(layout: Path) -> Path:
    manifest = json.loads(manifest_path(layout).read_text())
    return layout / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "host-link", "swapped", "truncated", "longer"])
def test_a_layer_blob_that_lies_is_refused(tmp_path: Path, host: Path, kind: str):
    layout = _image(tmp_path, installed_db({"hello": ["usr/bin/hello"]}))
    blob = _layer_blob(layout)
    data = blob.read_bytes()
    blob.unlink()
    expect = {
        "fifo": "is a FIFO",
        "dev-zero": "is a symlink",
        "host-link": "is a symlink",
        "swapped": "does not match its digest",
        "truncated": "its descriptor says",
        "longer": "its descriptor says",
    }[kind]
    if kind == "fifo":
        os.mkfifo(blob)
    elif kind == "dev-zero":
        blob.symlink_to("/dev/zero")
    elif kind == "host-link":
        blob.symlink_to(host / "secret")
    elif kind == "swapped":  # another valid layer of the same size: a shell where hello was
        other = gzip.compress(layer_tar([M("bin/sh", data=b"shell", mode=0o755)]), mtime=0)
        blob.write_bytes(other[: len(data)].ljust(len(data), b"\0"))
    elif kind == "truncated":
        blob.write_bytes(data[:-10])
    else:
        blob.write_bytes(data + b"\0" * (1 << 20))
    cases = ["fifo", "dev-zero", "host-link", "swapped", "truncated", "longer"]
    _attack(tmp_path, layout, host, expect, only=None if kind in ("fifo", "dev-zero") else cases.index(kind))


@pytest.mark.parametrize("kind", ["index-fifo", "index-link", "blobs-link"])
def test_layout_files_that_are_not_what_they_seem_are_refused(tmp_path: Path, host: Path, kind: str):
    layout = _image(tmp_path, installed_db({"hello": ["usr/bin/hello"]}))
    if kind == "index-fifo":
        (layout / "index.json").unlink()
        os.mkfifo(layout / "index.json")
        expect = "is a FIFO"
    elif kind == "index-link":
        (layout / "index.json").rename(host / "index.json")
        (layout / "index.json").symlink_to(host / "index.json")
        expect = "is a symlink"
    else:
        (layout / "blobs").rename(host / "blobs")
        (layout / "blobs").symlink_to(host / "blobs")
        expect = "is a symlink or not a directory"
    _attack(tmp_path, layout, host, expect, only=["index-fifo", "index-link", "blobs-link"].index(kind) + 1)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


MALFORMED = {
    "index-manifests-a-string": (
        "index",
        lambda i: i.update(manifests="sha256:abc"),
        "manifests is not a list",
    ),
    "index-manifest-an-object": (
        "index",
        lambda i: i.update(manifests={"digest": 1}),
        "manifests is not a list",
    ),
    "index-no-digest": ("index", lambda i: i["manifests"][0].pop("digest"), "is not sha256"),
    "index-bad-digest": (
        "index",
        lambda i: i["manifests"][0].update(digest="sha256:../../x"),
        "is not sha256",
    ),
    "index-no-size": ("index", lambda i: i["manifests"][0].pop("size"), "is not a whole number"),
    "index-nested": ("raw-index", '{"manifests": ' + _deep(50000) + "}", "nests deeper than"),
    "index-a-list": ("raw-index", "[]", "not a JSON object"),
    "manifest-layers-a-string": ("manifest", lambda m: m.update(layers="x"), "layers is not a list"),
    "manifest-layer-no-digest": ("manifest", lambda m: m["layers"][0].pop("digest"), "is not sha256"),
    "manifest-layer-a-number": ("manifest", lambda m: m.update(layers=[7]), "not a JSON object"),
    "manifest-no-config": ("manifest", lambda m: m.pop("config"), "has no config"),
    "manifest-annotations-a-list": ("manifest", lambda m: m.update(annotations=[]), "annotations is not"),
    "manifest-nested": ("raw-manifest", '{"config": ' + _deep(50000) + "}", "nests deeper than"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_index_and_manifests_end_in_one_line(tmp_path: Path, host: Path, case: str):
    layout = _image(tmp_path, installed_db({"hello": ["usr/bin/hello"]}))
    what, change, expect = MALFORMED[case]
    if what == "raw-index":
        (layout / "index.json").write_text(change)
    elif what == "raw-manifest":
        store_manifest(layout, change.encode())
    elif what == "index":
        index = json.loads((layout / "index.json").read_text())
        change(index)
        (layout / "index.json").write_text(json.dumps(index))
    else:
        rewrite_manifest(layout, change)
    _attack(tmp_path, layout, host, expect, only=sorted(MALFORMED).index(case))


def _zero_layer(sizes: list[int]) -> bytes:
    """A gzip layer of files of zeros, built from gzip members so that gigabytes cost milliseconds."""
    block = 16 << 20
    zeros = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    out = []
    for i, size in enumerate(sizes):
        info = tarfile.TarInfo(f"data/f{i:04}")
        info.size = size
        out.append(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT), mtime=0))
        assert size % block == 0
        out += [zeros] * (size // block)
    out.append(gzip.compress(bytes(1024), mtime=0))  # the end-of-archive blocks
    return b"".join(out)


def test_a_small_layer_with_a_huge_file_is_refused_before_it_is_written(tmp_path: Path, host: Path):
    """2 MiB of layer declaring a 2 GiB file: refused at its header, nothing of it written."""
    bomb = _zero_layer([2 << 30])
    assert len(bomb) < 4 << 20
    (tmp_path / "tmp").mkdir()
    layout = write_layout(tmp_path / "layout", [bomb])
    _attack(tmp_path, layout, host, "goes past the unpacking budget")


@pytest.mark.slow
def test_audit_memory_stays_bounded_on_large_files(tmp_path: Path):
    """120 files of 16 MiB (about 2 GiB) are unpacked and streamed through every rule; the peak RSS
    stays far below the data (before, audit held each file whole: about 2 GiB)."""
    (tmp_path / "tmp").mkdir()
    layout = write_layout(tmp_path / "layout", [_zero_layer([16 << 20] * 120)])
    proc = run_bounded(
        "image",
        "audit",
        str(layout),
        memory=1 << 30,
        seconds=300,
        env={"TMPDIR": str(tmp_path / "tmp"), "PKGREPO_IMAGE_MAX_RATIO": "5000"},
    )
    assert proc.returncode == 1, proc.stderr  # the data files belong to no package
    assert "owned-files" in proc.stderr
    assert proc.max_rss < 200 << 20, proc.max_rss
    print(f"peak RSS of audit over 120 x 16 MiB: {proc.max_rss >> 20} MiB")
    assert not any((tmp_path / "tmp").iterdir())
