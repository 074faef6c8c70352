"""Property tests over random OCI layouts: sbom, scan, verify and audit succeed or refuse, nothing else.

Hypothesis draws the index and manifest shapes (valid, wrong types, missing or
bad digests, deep nesting), the layers and their members (names with `..`,
absolute names, whiteouts; files, directories, symlinks and hard links aimed
inside the root or at the 'host' canaries; FIFOs) and the package database the
image carries (paths inside, outside and through links). For every layout each
command, run in-process through the CLI's one entry point (`pkgrepo.cli.run`),
ends with exit 0 or 2 (audit: 0, 1 or 2) within a time limit, prints no
internal error, and the host tree (everything outside the layout) is unchanged.
The subprocess tests in tests/test_image_evidence.py bound memory with prlimit;
here the peak RSS of the whole run is checked at the end.
"""

from __future__ import annotations

import contextlib
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
def databases(draw) -> M:
    pkgs = draw(
        st.dictionaries(
            st.sampled_from(["hello", "musl", "../x", "a/b"]), st.lists(db_paths, max_size=4), max_size=2
        )
    )
    return M("var/lib/pkgrepo/installed.json", data=installed_db(pkgs))


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


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    layers=st.lists(st.lists(members(), max_size=8), min_size=1, max_size=3),
    db=databases(),
    index_shape=st.just("valid") | st.sampled_from(sorted(INDEX_SHAPES)),
    manifest_shape=st.just("valid") | st.sampled_from(sorted(MANIFEST_SHAPES)),
)
def test_random_layouts_succeed_or_refuse(layers, db, index_shape, manifest_shape):
    work = Path(tempfile.mkdtemp(prefix="pkgrepo-props-"))
    try:
        layout = write_layout(work / "layout", [[db, *layers[0]], *layers[1:]])
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
            assert "internal error" not in text and "Traceback" not in text, (what, text)
            assert "CANARY" not in text, (what, text)
            assert _snapshot() == before, what
    finally:
        shutil.rmtree(work)


def test_the_property_runs_stayed_small():
    """The peak RSS of this process (the property test above ran in it) stays bounded."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1 << 20  # KiB: 1 GiB
