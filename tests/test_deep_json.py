"""Deeply nested JSON wherever pkgrepo reads JSON someone else wrote, through the real CLI.

A document of 100,000 nested `[` is deeper than CPython's recursion limit: parsed with a
bare `json.loads` it ends in `internal error: RecursionError`. Every reader of untrusted
JSON goes through `pkgrepo.safeio.untrusted_json` (depth and size bounded), so each case
here must end in one line naming the file or the registry, exit 2, in bounded time and
memory (`prlimit`), with nothing outside the temporary tree changed. Provenance, advisory,
VEX and SBOM files are covered the same way in test_evidence_boundary.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from pkgrepo.attest import dsse
from pkgrepo.package.meta import PackageInfo, canonical_json
from pkgrepo.safeio import JSON_DEPTH, untrusted_json
from tests.helpers.archives import package_writer
from tests.helpers.cli import run_cli
from tests.helpers.layouts import M, run_bounded, store_manifest, write_layout

DEEP = b"[" * 100_000 + b"]" * 100_000
JUST_DEEP = b"[" * (JSON_DEPTH + 1) + b"]" * (JSON_DEPTH + 1)  # parses, one level past the limit
MEMORY = 1 << 30
SECONDS = 60


def refused(*args: str, names: str) -> str:
    """`pkgrepo ARGS` must end in one line naming `names`, exit 2, within the limits."""
    proc = run_bounded(*args, memory=MEMORY, seconds=SECONDS)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert names in lines[0] and "nests deeper than" in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """A directory beside the hostile input that must come out unchanged."""
    c = tmp_path / "canary"
    c.mkdir()
    (c / "secret").write_text("canary\n")
    yield tmp_path
    assert sorted(os.listdir(c)) == ["secret"] and (c / "secret").read_text() == "canary\n"


@pytest.mark.parametrize("doc", [DEEP, JUST_DEEP], ids=["deep", "just-past-the-limit"])
def test_the_reader_bounds_depth_and_size(doc: bytes):
    with pytest.raises(ValueError, match="nests deeper than"):
        untrusted_json(doc)
    with pytest.raises(ValueError, match="more than the limit of 10"):
        untrusted_json(b"[" + b"0," * 10 + b"0]", limit=10)
    assert untrusted_json(b"[" * JSON_DEPTH + b"]" * JSON_DEPTH) is not None


@pytest.mark.parametrize("command", ["sbom", "scan"])
def test_an_installed_database_nested_deep(canary: Path, command: str):
    db = canary / "root/var/lib/pkgrepo/installed.json"
    db.parent.mkdir(parents=True)
    db.write_bytes(DEEP)
    refused(command, str(canary / "root"), names=str(db))


def _layout(tmp: Path, part: str) -> Path:
    """A layout whose `part` (index, manifest, config or the installed database in its layer)
    is DEEP, every digest and size consistent: only the nesting is hostile."""
    layer = [M("usr/bin/x", data=b"x")]
    if part == "database":
        layer.append(M("var/lib/pkgrepo/installed.json", data=DEEP))
    layout = write_layout(tmp / "layout", [layer])
    if part == "index":
        (layout / "index.json").write_bytes(DEEP)
    elif part == "manifest":
        store_manifest(layout, DEEP)
    elif part == "config":
        digest = hashlib.sha256(DEEP).hexdigest()
        (layout / "blobs/sha256" / digest).write_bytes(DEEP)
        index = json.loads((layout / "index.json").read_text())
        manifest_file = layout / "blobs/sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")
        manifest = json.loads(manifest_file.read_text())
        manifest["config"].update(digest=f"sha256:{digest}", size=len(DEEP))
        store_manifest(layout, json.dumps(manifest).encode())
    return layout


@pytest.mark.parametrize(
    "part, command",
    # sbom and scan share the layout reader: scan once, where its own reading begins (the database)
    [("index", "sbom"), ("manifest", "sbom"), ("config", "sbom"), ("database", "sbom"), ("database", "scan")],
)
def test_a_layout_nested_deep(canary: Path, part: str, command: str):
    layout = _layout(canary, part)
    names = {"index": "index.json", "database": "installed.json"}.get(part, str(layout / "blobs/sha256"))
    refused(command, str(layout), names=names)


@pytest.mark.parametrize("part", ["index", "manifest", "config"])
def test_the_audit_of_a_layout_nested_deep(canary: Path, part: str):
    layout = _layout(canary, part)
    names = "index.json" if part == "index" else str(layout / "blobs/sha256")
    refused("image", "audit", str(layout), names=names)


def _package(path: Path, info: bytes, manifest: bytes) -> Path:
    with package_writer(path, info, manifest):
        pass
    return path


@pytest.mark.parametrize("member", [".PKGINFO", ".MANIFEST"])
def test_a_package_whose_metadata_nests_deep(canary: Path, member: str):
    info = PackageInfo(name="evil", version="1.0", description="x", license="MIT", origin="evil")
    good = {".PKGINFO": info.to_bytes(), ".MANIFEST": canonical_json([])}
    pkg = _package(canary / info.filename, good[".PKGINFO"], good[".MANIFEST"])
    assert run_cli("show", str(pkg)).returncode == 0, "the package is well formed but for DEEP"
    hostile = {**good, member: DEEP}
    pkg = _package(canary / info.filename, hostile[".PKGINFO"], hostile[".MANIFEST"])
    refused("show", str(pkg), names=str(pkg))


def test_an_image_key_list_nested_deep(canary: Path):
    keys = canary / "keys.json"
    keys.write_bytes(DEEP)
    line = refused(
        "verify", "docker://127.0.0.1:9/x:latest", "--insecure",
        "--provenance", str(canary), "--key", str(_provenance_key(canary)), "--image-keys", str(keys),
        names=str(keys),
    )  # fmt: skip
    assert "image key list" in line


def _provenance_key(tmp: Path) -> Path:
    path = tmp / "provenance.pub"
    path.write_bytes(dsse.public_key_bytes(CryptoSigner.generate_ed25519().public_key))
    return path


class _DeepRegistry(BaseHTTPRequestHandler):
    """A registry that answers every manifest, blob and listing with DEEP."""

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(DEEP)))
        self.end_headers()
        self.wfile.write(DEEP)


def test_a_registry_that_answers_deep_json(canary: Path):
    env = {"PKGREPO_KEYS": str(canary / "keys"), "COSIGN_PASSWORD": "x"}
    assert run_cli("image", "key", "init", env=env).returncode == 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeepRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        line = refused(
            "verify", f"docker://{host}/pkgrepo/x:latest", "--insecure",
            "--provenance", str(canary), "--key", str(_provenance_key(canary)),
            "--image-keys", str(canary / "keys/image/keys.json"),
            names=f"registry {host}",
        )  # fmt: skip
        assert "manifest" in line
    finally:
        server.shutdown()
        server.server_close()
