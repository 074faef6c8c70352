"""Image records: what the catalogue shows of an image spec's built OCI images.

An image reaches the repository as a signed target `images/NAME.json` (one per
spec, NAME its `org.opencontainers.image.title`), written by
`pkgrepo repo web REPO --images DIR` from the OCI layouts in DIR (any layout:
`NAME-prod`/`NAME-dev` from `pkgrepo image build`, `NAME` from `pkgrepo
rollout --image-spec`), so the site, like everything else it shows, reads
only what the repository's metadata signs. A record holds facts of the built
images, never a verdict: for each profile the manifest digest, the size a pull
downloads, the uncompressed size (each gzip member's ISIZE), the layers with
the packages in each (the config's history comments, `name version, ...`),
and the runtime settings the Dockerfile needs. The scan is made when the site
is generated, against the advisories and VEX of that day.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import IO, Any

from pkgrepo.errors import BadInput
from pkgrepo.image.oci import read_layout
from pkgrepo.image.outputs import is_layout
from pkgrepo.package.meta import NAME_RE, canonical_json
from pkgrepo.resolve.profiles import PROFILES
from pkgrepo.safeio import untrusted_json

FORMAT = 1
PREFIX = "images/"
TITLE = "org.opencontainers.image.title"
PROFILE = "pkgrepo.image.profile"
FULL_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~_]*-r[0-9]+$")  # [epoch:]version-rrelease
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _gzip_size(blob: IO[bytes]) -> int:
    """The uncompressed size of a one-member gzip file (its ISIZE trailer; < 4 GiB)."""
    with blob:
        blob.seek(-4, 2)
        return int.from_bytes(blob.read(4), "little")


def _packages(title: str) -> list[list[str]]:
    """`zlib 1.3-r1, musl 1.2-r2` -> [[zlib, 1.3-r1], [musl, 1.2-r2]]; a title of other words -> []."""
    out = []
    for part in title.split(", "):
        name, _, version = part.partition(" ")
        if not (re.match(NAME_RE, name) and FULL_VERSION.match(version)):
            return []
        out.append([name, version])
    return out


def profile_record(path: Path) -> tuple[str, str, dict[str, Any]]:
    """(spec name, profile, record) of the image in the layout at `path`."""
    img = read_layout(path)
    annotations = img.manifest.get("annotations") or {}
    name, profile = annotations.get(TITLE), annotations.get(PROFILE)
    if not isinstance(name, str) or not SAFE.match(name) or profile not in PROFILES:
        raise BadInput(
            f"{path}: not an image pkgrepo built (no {TITLE} and {PROFILE} annotations); "
            "build it with `pkgrepo image build`"
        )
    history = [h.get("comment", "") for h in img.config.get("history") or []]
    if len(history) != len(img.layers):
        raise BadInput(f"{path}: the config's history does not describe each layer")
    layers = [
        {
            "digest": d.digest,
            "size": d.size,
            "uncompressed": _gzip_size(img.open_layer(d)),
            "title": title,
            "packages": _packages(title),
        }
        for d, title in zip(img.layers, history, strict=True)
    ]
    manifest_size = (path / "blobs" / "sha256" / img.digest.removeprefix("sha256:")).stat().st_size
    conf = img.config.get("config") or {}
    return (
        name,
        profile,
        {
            "digest": img.digest,
            "size": manifest_size + img.manifest["config"]["size"] + sum(x["size"] for x in layers),
            "uncompressed": sum(x["uncompressed"] for x in layers),
            "layers": layers,
            "user": conf.get("User"),
            "workdir": conf.get("WorkingDir"),
            "entrypoint": conf.get("Entrypoint"),
            "cmd": conf.get("Cmd"),
        },
    )


def records(directory: Path) -> dict[str, bytes]:
    """Spec name -> canonical record, for every OCI layout in `directory`."""
    if not directory.is_dir():
        raise BadInput(f"{directory}: not a directory of OCI image layouts; pass --images DIR")
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.is_symlink() or not path.is_dir() or not is_layout(path):
            continue
        try:
            name, profile, rec = profile_record(path)
        except (KeyError, TypeError, AttributeError, ValueError, OSError) as e:
            raise BadInput(f"{path}: not a readable OCI image layout ({type(e).__name__}: {e})") from None
        profiles = found.setdefault(name, {})
        if profile in profiles:
            raise BadInput(f"{path}: a second {profile} image of {name} in {directory}; keep one")
        profiles[profile] = rec
    if not found:
        raise BadInput(f"{directory}: holds no OCI image layout pkgrepo built")
    return {
        name: canonical_json({"format": FORMAT, "name": name, "profiles": profiles})
        for name, profiles in sorted(found.items())
    }


def publish_records(repo: Path, keys_dir: Path | None, directory: Path) -> list[str]:
    """Sign the records of the layouts in `directory` into the repository; the targets added."""
    from pkgrepo.repo.repository import Repository

    found = records(directory)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-images-") as tmp:
        files = []
        for name, data in found.items():
            (Path(tmp) / f"{name}.json").write_bytes(data)
            files.append((f"{PREFIX}{name}.json", Path(tmp) / f"{name}.json"))
        return Repository.at(repo, keys_dir).publish([], sidecars=lambda _files: files).added


def _check_profile(p: Any) -> None:
    ints = ("size", "uncompressed")
    if (
        not isinstance(p, dict)
        or not isinstance(p.get("digest"), str)
        or not isinstance(p.get("layers"), list)
    ):
        raise ValueError("a profile has no digest or layers")
    if not all(isinstance(p.get(k), int) for k in ints):
        raise ValueError("a profile's sizes are not byte counts")
    for layer in p["layers"]:
        if not isinstance(layer, dict) or not all(isinstance(layer.get(k), int) for k in ints):
            raise ValueError("a layer's sizes are not byte counts")
        if not isinstance(layer.get("digest"), str) or not isinstance(layer.get("title"), str):
            raise ValueError("a layer has no digest or title")
        layer["packages"] = [[str(n), str(v)] for n, v in layer["packages"]]
    for key in ("user", "workdir"):
        if not isinstance(p.get(key), str | None):
            raise ValueError(f"{key} is not a string")
    for key in ("entrypoint", "cmd"):
        if not isinstance(p.get(key), list | None):
            raise ValueError(f"{key} is not a list")


def read_record(target: str, data: bytes) -> dict[str, Any]:
    """A signed record's contents, checked field by field; BadInput naming the target when it is not one."""
    try:
        rec = untrusted_json(data)
        if rec.get("format") != FORMAT or not SAFE.match(rec["name"]):
            raise ValueError("unknown format or name")
        if not isinstance(rec["profiles"], dict) or not set(rec["profiles"]) <= set(PROFILES):
            raise ValueError("profiles are not prod and dev")
        for p in rec["profiles"].values():
            _check_profile(p)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadInput(
            f"{target}: not an image record ({e}); publish it again with `repo web --images`"
        ) from None
    return rec
