"""Hand-made OCI image layouts for the attacks on the layout reader: any member, any descriptor."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
}


@dataclass(frozen=True)
class M:
    """A layer member: a file's data, a link's target (bytes), or nothing."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644

    def add_to(self, tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(self.name)
        info.type, info.mode = TYPES[self.kind], self.mode
        if self.kind in ("symlink", "hardlink"):
            info.linkname = self.data.decode()
            tar.addfile(info)
        elif self.kind == "file":
            info.size = len(self.data)
            tar.addfile(info, io.BytesIO(self.data))
        else:
            tar.addfile(info)


def layer_tar(members: list[M]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            m.add_to(tar)
    return raw.getvalue()


def installed_db(packages: dict[str, list[str]]) -> bytes:
    return json.dumps(
        {"format": 1, "packages": {n: {"version": "1.0-r1", "files": f} for n, f in packages.items()}}
    ).encode()


def write_layout(
    path: Path,
    layers: list[list[M] | bytes],
    user: str = "65532:65532",
    profile: str = "prod",
    env: list[str] | None = None,
) -> Path:
    """A layout of `layers` (members, or a ready gzip blob) with valid digests and sizes."""
    blobs = path / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    descs = [
        put(x if isinstance(x, bytes) else gzip.compress(layer_tar(x), mtime=0), MEDIA_LAYER) for x in layers
    ]
    config = {"config": {"User": user, "Env": env or ["PATH=/usr/bin:/bin"]}, "rootfs": {"type": "layers"}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": descs,
        "annotations": {"pkgrepo.image.profile": profile},
    }
    m = put(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [m]}))
    return path


def manifest_path(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    return layout / "blobs/sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")


def rewrite_manifest(layout: Path, change) -> None:
    """Apply `change` to the manifest JSON and store it under its new digest (index updated)."""
    manifest = json.loads(manifest_path(layout).read_text())
    change(manifest)
    store_manifest(layout, json.dumps(manifest).encode())


def store_manifest(layout: Path, data: bytes) -> None:
    """Make `data` the layout's manifest, stored under its digest (so only its content can be wrong)."""
    index = json.loads((layout / "index.json").read_text())
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    index["manifests"][0].update({"digest": f"sha256:{digest}", "size": len(data)})
    (layout / "index.json").write_text(json.dumps(index))


@dataclass(frozen=True)
class Bounded:
    returncode: int
    stdout: str
    stderr: str
    max_rss: int  # bytes, the child's peak resident set


# Linux keeps a process's peak RSS across exec, and a child started by fork or vfork from pytest starts
# from pytest's own peak (hundreds of MiB late in a session). This parent is small, so the command's
# figure is its own: it forks, execs the command, and writes the child's ru_maxrss (KiB) to argv[1].
_PEAK_RSS = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
"""


def run_bounded(
    *args: str, memory: int = 1 << 30, seconds: int = 120, env: dict[str, str] | None = None
) -> Bounded:
    """`pkgrepo ARGS` under prlimit (address space `memory`, CPU `seconds`), killed after twice that wall
    time; its peak RSS measured by wait4 in a small parent (_PEAK_RSS). A traceback or an internal error
    fails the test."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    import pytest

    from tests.helpers.cli import ROOT, TRACEBACK

    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile() as peak,
    ):
        command = ["prlimit", f"--as={memory}", f"--cpu={seconds}", sys.executable, "-m", "pkgrepo", *args]
        proc = subprocess.Popen(
            [sys.executable, "-c", _PEAK_RSS, peak.name, *command],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        deadline = time.monotonic() + 2 * seconds
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                pytest.fail(f"pkgrepo {' '.join(args)} ran past {2 * seconds} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        max_rss = int(Path(peak.name).read_text() or 0) * 1024
        result = Bounded(proc.returncode, out.read().decode(), err.read().decode(), max_rss)
    if TRACEBACK in result.stderr or "internal error" in result.stderr:
        pytest.fail(f"pkgrepo {' '.join(args)} failed badly ({result.returncode}):\n{result.stderr}")
    return result
