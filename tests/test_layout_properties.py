"""Property tests over random OCI layouts: sbom, scan, verify and audit succeed or refuse, nothing else.

Hypothesis picks which part of a layout is hostile (none, one, or all at once: one
part at a time reaches the code behind the other parts' checks) and draws it: the
index, manifest and config shapes (valid, wrong types, missing or bad digests,
deep nesting), the first layer's blob (not gzip, truncated, missing, a link to a
host file or /dev/zero, a FIFO), the layers and their members (clean ones; or
names with `..`, absolute names, whiteouts; files, directories, symlinks and hard
links aimed inside the root or at the 'host' canaries; FIFOs) and the package
database the image carries (its own files; or hostile shapes, deep nesting, paths
outside and through links). For every layout each command, run in-process through
the CLI's one entry point (`pkgrepo.cli.run`), ends with exit 0 or 2 (audit: 0, 1
or 2) within a time limit, prints no internal error, and the host tree
(everything outside the layout) is unchanged; over the run, sbom and scan succeed
on some layouts and every command refuses some. The subprocess tests in
tests/test_image_evidence.py bound memory with prlimit; here the peak RSS of the
whole run is checked at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pkgrepo.attest import dsse
from pkgrepo.cli import run
from tests.helpers.layouts import M, installed_db, store_manifest, write_layout

HOST = Path(tempfile.mkdtemp(prefix="pkgrepo-props-host-"))
(HOST / "secret").write_text("CANARY-SECRET\n")
(HOST / "hello.spdx.json").write_text('{"CANARY": 1}')
os.mkfifo(HOST / "fifo")
KEYS = Path(tempfile.mkdtemp(prefix="pkgrepo-props-keys-"))
PUB = KEYS / "provenance.pub"
PUB.write_bytes(dsse.public_key_bytes(dsse.signer(KEYS / "provenance").public_key))

PARTS = [
    "a",
    "b",
    "bin",
    "usr",
    "etc",
    "sh",
    "..",
    ".",
    "",
    ".wh.a",
    ".wh..wh..opq",
    "var/lib/pkgrepo",
    "sbom",
]
names = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/etc/passwd", "../../bin/sh", "var/lib/pkgrepo/sbom", "var/lib/pkgrepo/sbom/hello.spdx.json"]
)
targets = names | st.sampled_from([str(HOST), str(HOST / "secret"), str(HOST / "fifo"), "/dev/zero", "/"])
clean = st.lists(
    st.sampled_from(["a", "b", "bin", "usr", "etc", "sh", "var/lib/pkgrepo/sbom"]), min_size=1, max_size=3
)
db_paths = (
    clean.map("/".join)
    | names
    | st.sampled_from([str(HOST / "secret"), "../" * 8 + str(HOST / "fifo").lstrip("/")])
)


@st.composite
def members(draw) -> M:
    kind = draw(st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]))
    name = draw(names)
    if kind in ("symlink", "hardlink"):
        return M(name, kind, draw(targets).encode())
    if kind == "file":
        data = draw(st.binary(max_size=64))
        mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o666]))
        return M(name, kind, data, mode)
    return M(name, kind, mode=0o755)


@st.composite
def clean_members(draw) -> M:
    """A member a real image has: a file, directory or link inside the root, no name both a file
    and a directory."""
    kind = draw(st.sampled_from(["file", "file", "dir", "symlink"]))
    if kind == "symlink":
        return M(draw(st.sampled_from(["l1", "usr/l2"])), kind, draw(st.sampled_from(CLEAN_FILES)).encode())
    if kind == "file":
        return M(draw(st.sampled_from(CLEAN_FILES)), kind, draw(st.binary(max_size=64)), 0o644)
    return M(draw(st.sampled_from(["usr", "etc", "a", "a/b"])), kind, mode=0o755)


CLEAN_FILES = ["usr/f1", "etc/f2", "a/b/f3", "f4"]


@st.composite
def databases(draw, files: list[str], hostile: bool) -> M:
    """The package database: when not `hostile`, one package owning every file and link of the
    image (so the commands get past it, and an audit can pass); else a hostile shape, or
    packages with hostile names owning hostile paths and some of the image's own."""
    if not hostile:
        return M("var/lib/pkgrepo/installed.json", data=installed_db({"hello": files}))
    shape = draw(st.sampled_from(sorted(DB_SHAPES)))
    if DB_SHAPES[shape] is not None:
        return M("var/lib/pkgrepo/installed.json", data=DB_SHAPES[shape].encode())
    paths = st.sampled_from(files) | db_paths if files else db_paths
    pkgs = draw(
        st.dictionaries(
            st.sampled_from(["hello", "musl", "../x", "a/b"]), st.lists(paths, max_size=4), max_size=2
        )
    )
    return M("var/lib/pkgrepo/installed.json", data=installed_db(pkgs))


@st.composite
def images(draw, hostile_members: bool, hostile_db: bool) -> list[list[M]]:
    """Layers of hostile members (names, types, links) or of clean ones, the database first."""
    member = members() if hostile_members else clean_members()
    layers = draw(st.lists(st.lists(member, max_size=8), min_size=1, max_size=3))
    layers[0].insert(0, M("f4", data=b"f4"))  # a file for the package to own
    files = sorted({m.name for layer in layers for m in layer if m.kind in ("file", "symlink")})
    return [[draw(databases(files, hostile_db)), *layers[0]], *layers[1:]]


# Which part of the layout is hostile: one part at a time reaches the code behind the others'
# checks; "none" makes sure the commands also succeed, "all" combines every kind of hostility.
HOSTILE = ["none", "none", "none", "members", "db", "index", "manifest", "config", "blob", "all"]


def _deep(n: int) -> str:
    return "[" * n + "]" * n


INDEX_SHAPES = {
    "valid": None,
    "manifests-a-string": lambda i: i.update(manifests="x"),
    "manifests-an-object": lambda i: i.update(manifests={"digest": "x"}),
    "manifest-a-number": lambda i: i.update(manifests=[1]),
    "no-digest": lambda i: i["manifests"][0].pop("digest"),
    "digest-escapes": lambda i: i["manifests"][0].update(digest="sha256:" + "../" * 20 + "etc/passwd"),
    "size-a-string": lambda i: i["manifests"][0].update(size="12"),
    "size-wrong": lambda i: i["manifests"][0].update(size=i["manifests"][0]["size"] + 1),
    "two-images": lambda i: i["manifests"].append(i["manifests"][0]),
}
MANIFEST_SHAPES = {
    "valid": None,
    "layers-a-string": '{"config": {}, "layers": "x"}',
    "config-missing": '{"layers": []}',
    "deep": '{"config": ' + _deep(100000) + "}",
    "not-an-object": "[1, 2]",
    "not-json": "\xff\xfe",
}


DB_SHAPES = {
    "hostile-paths": None,
    "deep": '{"format": 1, "packages": {"hello": {"version": "1", "files": ' + _deep(100000) + "}}}",
    "packages-a-list": '{"format": 1, "packages": ["hello"]}',
    "record-a-string": '{"format": 1, "packages": {"hello": "1.0"}}',
    "files-a-string": '{"format": 1, "packages": {"hello": {"version": "1", "files": "usr/a"}}}',
    "not-json": "{",
}
CONFIG_SHAPES = {
    "valid": None,
    "deep": '{"config": ' + _deep(100000) + "}",
    "config-a-string": '{"config": "x"}',
    "user-a-number": '{"config": {"User": 0, "Env": ["PATH=/bin"]}}',
    "env-a-string": '{"config": {"User": "1:1", "Env": "PATH=/bin"}}',
    "not-an-object": "[]",
}
BLOB_SHAPES = {  # the first layer's blob, its digest and size left as the manifest declares them
    "valid": None,
    "not-gzip": lambda blob: blob.write_bytes(b"not a layer"),
    "truncated": lambda blob: blob.write_bytes(blob.read_bytes()[:20]),
    "missing": lambda blob: blob.unlink(),
    "link-to-host": lambda blob: (blob.unlink(), blob.symlink_to(HOST / "secret")),
    "link-to-zero": lambda blob: (blob.unlink(), blob.symlink_to("/dev/zero")),
    "fifo": lambda blob: (blob.unlink(), os.mkfifo(blob)),
}


def _set_config(layout: Path, data: bytes) -> None:
    """Make `data` the image config, stored under its digest and named by the manifest."""
    blobs = layout / "blobs/sha256"
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].removeprefix("sha256:")).read_text())
    manifest["config"].update(digest=f"sha256:{digest}", size=len(data))
    store_manifest(layout, json.dumps(manifest).encode())


def _first_layer(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs/sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].removeprefix("sha256:")).read_text())
    return blobs / manifest["layers"][0]["digest"].removeprefix("sha256:")


@contextlib.contextmanager
def deadline(seconds: float):
    def expire(*_):
        raise TimeoutError(f"ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _snapshot() -> list[tuple[str, int, int]]:
    return sorted((p.name, p.lstat().st_mode, p.lstat().st_size) for p in HOST.iterdir())


def _run(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with deadline(30), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run(args)
        except SystemExit as e:  # `verify` exits 2 itself after its one line per problem
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue() + err.getvalue()


OUTCOMES: dict[str, set[int]] = {}  # command -> the exit codes seen over the property's examples


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile=st.sampled_from(HOSTILE), data=st.data())
def test_random_layouts_succeed_or_refuse(hostile: str, data: st.DataObject):
    def shape(part: str, shapes: dict) -> str:
        return data.draw(st.sampled_from(sorted(shapes)), part) if hostile in (part, "all") else "valid"

    layers = data.draw(images(hostile in ("members", "all"), hostile in ("db", "all")), "layers")
    blob_shape, config_shape = shape("blob", BLOB_SHAPES), shape("config", CONFIG_SHAPES)
    manifest_shape, index_shape = shape("manifest", MANIFEST_SHAPES), shape("index", INDEX_SHAPES)
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-props-"))
    try:
        layout = write_layout(work / "layout", layers)
        if BLOB_SHAPES[blob_shape] is not None:
            BLOB_SHAPES[blob_shape](_first_layer(layout))
        if CONFIG_SHAPES[config_shape] is not None:
            _set_config(layout, CONFIG_SHAPES[config_shape].encode())
        if MANIFEST_SHAPES[manifest_shape] is not None:
            store_manifest(layout, MANIFEST_SHAPES[manifest_shape].encode("utf-8", "surrogateescape"))
        if INDEX_SHAPES[index_shape] is not None:
            index = json.loads((layout / "index.json").read_text())
            INDEX_SHAPES[index_shape](index)
            (layout / "index.json").write_text(json.dumps(index))
        before = _snapshot()
        commands = {
            "sbom": (["sbom", str(layout)], {0, 2}),
            "scan": (["scan", str(layout)], {0, 2}),
            "verify": (["verify", str(layout), "--key", str(PUB), "--provenance", str(work)], {0, 2}),
            "audit": (["image", "audit", str(layout)], {0, 1, 2}),
        }
        for what, (args, allowed) in commands.items():
            code, text = _run(args)
            assert code in allowed, (what, code, text)
            event(f"{what} exit {code}")
            OUTCOMES.setdefault(what, set()).add(code)
            assert "internal error" not in text and "Traceback" not in text, (what, text)
            assert "CANARY" not in text, (what, text)
            assert _snapshot() == before, what
    finally:
        shutil.rmtree(work)


def test_the_property_runs_stayed_small():
    """The peak RSS of this process (the property test above ran in it) stays bounded, and the
    property reached past the refusals: sbom and scan succeeded on some layout, audit judged some
    (passed or failed them), and each command refused some (verify has no provenance here: it
    refuses every layout, after reading it)."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1 << 20  # KiB: 1 GiB
    if OUTCOMES:  # the property ran in this process
        assert 0 in OUTCOMES["sbom"] and 0 in OUTCOMES["scan"] and OUTCOMES["audit"] & {0, 1}, OUTCOMES
        assert all(2 in codes for codes in OUTCOMES.values()), OUTCOMES
