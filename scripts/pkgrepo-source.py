"""Pin pkgrepo's own code as the source of the `pkgrepo` recipe (recipes/pkgrepo.yaml).

pkgrepo has no upstream release to download: its source is this checkout. This
script makes one deterministic tar of the files git tracks under `pkgrepo/`
(with `pkgrepo/data`, a link to `repo-data/`, expanded), `pyproject.toml` and
`README.md`, as they are in the working tree: sorted entries, owner 0:0, modes
0644/0755 from the executable bit, every mtime the recipe's
`source-date-epoch:`. The same files give the same bytes, so the same sha256,
whatever the commits: committing the code with its re-pinned recipe keeps the
pin. It then stores the tar in the source cache (as `pkgrepo fetch --add` does;
also in `--mirror DIR`, a PKGREPO_MIRROR directory, under its sha256) and
writes the recipe's `sha256:` line (new bytes also bump `release:`, since a repository
refuses other bytes under a published release; and `source-date-epoch:` with `--epoch
SECONDS`, say at a release), in place or into `--recipe PATH`.

Usage: .venv/bin/python scripts/pkgrepo-source.py [--recipe PATH] [--mirror DIR] [--cache DIR] [--epoch N]
(after a change to pkgrepo/, before `pkgrepo build pkgrepo`; commit the recipe with the change.)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "pkgrepo.yaml"


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def files() -> list[tuple[str, Path]]:
    """(name in the archive, file in the checkout) for every tracked file shipped, sorted."""
    out: list[tuple[str, Path]] = []
    for rel in git("ls-files", "-z", "--", "pkgrepo", "pyproject.toml", "README.md").split("\0"):
        if not rel:
            continue
        path = ROOT / rel
        if rel == "pkgrepo/data" and path.is_symlink():
            for data in git("ls-files", "-z", "--", "repo-data").split("\0"):
                if data:
                    out.append(("pkgrepo/data/" + data.removeprefix("repo-data/"), ROOT / data))
        elif path.is_file():  # a tracked file deleted in the working tree is not shipped
            out.append((rel, path))
    return sorted(out)


def make_tar(prefix: str, mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, path in files():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(f"{prefix}/{d}")
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                    tar.addfile(info)
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime = len(data), mtime
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--recipe", type=Path, default=RECIPE, help="recipe to write (default: recipes/pkgrepo.yaml)"
    )
    ap.add_argument("--mirror", type=Path, help="also store the tar here under its sha256 (PKGREPO_MIRROR)")
    ap.add_argument("--epoch", type=int, help="a new source-date-epoch (every mtime in the tar)")
    ap.add_argument("--cache", type=Path, help="source cache (default $PKGREPO_CACHE or ~/.cache/pkgrepo)")
    args = ap.parse_args()
    text = RECIPE.read_text()
    version = re.search(r"(?m)^  version: \"?([^\"\s]+)\"?$", text)
    if version is None:
        print(f"{RECIPE}: no package version", file=sys.stderr)
        return 2
    epoch = re.search(r"(?m)^  source-date-epoch: (\d+)$", text)
    if epoch is None and args.epoch is None:
        print(f"{RECIPE}: no source-date-epoch (pass --epoch SECONDS)", file=sys.stderr)
        return 2
    mtime = args.epoch if args.epoch is not None else int(epoch.group(1))
    data = make_tar(f"pkgrepo-{version.group(1)}", mtime)
    digest = hashlib.sha256(data).hexdigest()
    sys.path.insert(0, str(ROOT))
    from pkgrepo.source import SourceCache

    tmp = ROOT / f".pkgrepo-source-{os.getpid()}.tar"
    try:
        tmp.write_bytes(data)
        SourceCache(args.cache).add(tmp)
        if args.mirror:
            args.mirror.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp, args.mirror / digest)
    finally:
        tmp.unlink(missing_ok=True)
    pinned = re.search(r"(?m)^    sha256: ([0-9a-f]{64})$", text)
    if pinned and pinned.group(1) != digest:  # new bytes, new release: a repository never takes
        # other bytes under a name-version-release it has published
        text = re.sub(r"(?m)^(  release: )(\d+)$", lambda m: f"{m[1]}{int(m[2]) + 1}", text, count=1)
    text = re.sub(r"(?m)^(    sha256: )[0-9a-f]{64}$", rf"\g<1>{digest}", text, count=1)
    text = re.sub(r"(?m)^(  source-date-epoch: )\d+", rf"\g<1>{mtime}", text, count=1)
    args.recipe.write_text(text)
    print(f"{digest}  pkgrepo-{version.group(1)}.tar ({len(data)} bytes) -> {args.recipe}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
