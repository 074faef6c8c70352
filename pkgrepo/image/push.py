"""Publish an OCI layout to a registry with skopeo (the manifest is copied as is: same digest)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.image.oci import read_layout


def push(layout: Path, ref: str, insecure: bool = False) -> str:
    """Copy the layout's image to `ref` (REGISTRY/REPO[:TAG]); return the pushed manifest digest."""
    image = read_layout(layout)
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise PkgrepoError("skopeo is not installed; apt-get install skopeo")
    dest = ref if ref.startswith("docker://") else f"docker://{ref}"
    if "/" not in dest.removeprefix("docker://"):
        raise BadInput(f"{ref}: expected REGISTRY/REPOSITORY[:TAG]")
    with tempfile.TemporaryDirectory(prefix="pkgrepo-push-") as tmp:
        digest_file = Path(tmp) / "digest"
        args = [skopeo, "copy", "--quiet", "--digestfile", str(digest_file)]
        if insecure:
            args.append("--dest-tls-verify=false")
        proc = subprocess.run([*args, f"oci:{layout}", dest], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise PkgrepoError(f"pushing {layout} to {ref} failed: {last}")
        pushed = digest_file.read_text().strip()
    if pushed != image.digest:
        raise PkgrepoError(f"{ref}: the registry holds {pushed}, not the layout's {image.digest}")
    return pushed
