"""The client's configuration inside an image: `/etc/pkgrepo/`.

A dev image carries the repository it was built from (docs/images.md, "The
package manager inside dev images"):

    /etc/pkgrepo/repositories            one `NAME URL` per line; `#` comments
    /etc/pkgrepo/trusted/NAME.root.json  the repository's root metadata, trusted on first use

When neither `--packages` nor `--repo` is given, the client uses the first
repository listed there (`--repo NAME` picks another by name) with its trusted
root, and `--root` defaults to `/`. Without the file the flags stay required.
`PKGREPO_CONFIG_DIR` replaces `/etc/pkgrepo` (tests).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput

DEFAULT_DIR = "/etc/pkgrepo"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def config_dir() -> Path:
    return Path(os.environ.get("PKGREPO_CONFIG_DIR") or DEFAULT_DIR)


@dataclass(frozen=True)
class Configured:
    name: str
    url: str
    trust: Path


def configured() -> list[Configured]:
    """The repositories of `/etc/pkgrepo/repositories`, in order; [] when there is no such file."""
    base = config_dir()
    path = base / "repositories"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    found: list[Configured] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not NAME_RE.match(parts[0]) or not parts[1].startswith(("http://", "https://")):
            raise BadInput(f"{path}:{n}: expected `NAME URL` (a lower-case name, an http:// or https:// URL)")
        found.append(Configured(parts[0], parts[1], base / "trusted" / f"{parts[0]}.root.json"))
    return found


def repository(repo: str | None, trust: Path | None) -> tuple[str | None, Path | None]:
    """`--repo`/`--trust` as given, or filled from the configuration: no `--repo` is the first
    configured repository, `--repo NAME` a configured one by name."""
    if repo is not None and repo.startswith(("http://", "https://")):
        return repo, trust
    entries = configured()
    if not entries:
        if repo is not None:
            raise BadInput(f"--repo {repo}: not a URL, and no {config_dir() / 'repositories'} names it")
        return None, trust
    if repo is None:
        chosen = entries[0]
    else:
        chosen = next((e for e in entries if e.name == repo), None)
        if chosen is None:
            names = ", ".join(e.name for e in entries)
            raise BadInput(f"--repo {repo}: not a URL nor a configured repository ({names})")
    return chosen.url, trust if trust is not None else chosen.trust


def default_root(root: Path | None) -> Path:
    """`--root`, or `/` where a repository is configured (inside an image)."""
    if root is not None:
        return root
    if configured():
        return Path("/")
    raise BadInput(
        f"--root DIR is required (it defaults to / only where {config_dir() / 'repositories'} exists)"
    )
