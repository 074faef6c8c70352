"""Throwaway recipes and their sources: small tarballs, the local mirror, a probe recipe built for real."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

from tests.helpers.cli import run_cli

PROBE = """package:
  name: {name}
  version: "1.0"
  description: sandbox probe
  license: MIT
sources:
  - url: {url}
    sha256: "{sha}"
pipeline:
  - runs: |
{script}
"""


def make_tarball(path: Path, files: dict[str, str], top: str = "src-1.0") -> str:
    """A small source tarball; returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mtime = 1_600_000_000
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mirror_url(tmp_path: Path, file: Path) -> tuple[str, str]:
    """Put `file` into the local mirror `tmp_path/mirror` (named by its sha256); return (url, sha256).

    The URL names no reachable host: with PKGREPO_MIRROR set (`mirror_env`) the mirror serves it.
    """
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    (tmp_path / "mirror").mkdir(exist_ok=True)
    shutil.copyfile(file, tmp_path / "mirror" / sha)
    return f"https://mirror.invalid/{file.name}", sha


def mirror_env(tmp_path: Path) -> dict[str, str]:
    return {"PKGREPO_MIRROR": str(tmp_path / "mirror")}


def build_probe(tmp_path: Path, name: str, script: str, env: dict[str, str] | None = None):
    """Build recipe `name` whose one step runs `script`, into `tmp_path/out`; returns (process, out)."""
    tarball = tmp_path / "probe.tar.gz"
    make_tarball(tarball, {"main.c": "int main(void){return 0;}\n"})
    url, sha = mirror_url(tmp_path, tarball)
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    body = "\n".join("      " + line for line in script.strip().splitlines())
    (recipes / f"{name}.yaml").write_text(PROBE.format(name=name, url=url, sha=sha, script=body))
    out = tmp_path / "out"
    proc = run_cli(
        "build",
        name,
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
        env={**mirror_env(tmp_path), **(env or {})},
    )
    return proc, out
