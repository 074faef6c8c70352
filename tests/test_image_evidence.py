"""SBOM, provenance and scan of an OCI image layout, read as the root it unpacks to."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pkgrepo.errors import BadInput
from pkgrepo.image.unpack import unpack
from tests.helpers.cli import ROOT, run_cli


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


def _layout(tmp_path: Path, members: list[tuple[str, str, bytes]]) -> Path:
    """A minimal layout with one layer of (name, kind, data-or-link-target) members."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    layout = tmp_path / "layout"
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    config = put(b"{}")
    manifest = put(json.dumps({"config": {"digest": config}, "layers": [{"digest": put(layer)}]}).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": manifest}]}))
    return layout


@pytest.mark.parametrize(
    "members",
    [
        [("../escape", "file", b"x")],
        [("etc", "symlink", b"/tmp"), ("etc/passwd", "file", b"root::0:0::/:/bin/sh\n")],
        [("a", "symlink", b"../../.."), ("a/b", "file", b"x")],
    ],
    ids=["dotdot", "through-absolute-link", "through-relative-link"],
)
def test_hostile_layers_never_write_outside(tmp_path: Path, members):
    layout = _layout(tmp_path, members)
    dest = tmp_path / "root"
    dest.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(BadInput):
        unpack(layout, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "escape").exists()
