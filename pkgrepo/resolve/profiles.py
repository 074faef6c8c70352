"""Image profiles: prod resolves the roots alone, dev adds the repository's dev extras."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pkgrepo.errors import BadInput
from pkgrepo.resolve.model import Index, IndexKind

Profile = Literal["prod", "dev"]
PROFILES: tuple[Profile, ...] = get_args(Profile)


def extras_file() -> Path:
    """`$PKGREPO_DATA/dev-extras.yaml`, else the copy shipped with pkgrepo (repo-data/ in the tree)."""
    env = os.environ.get("PKGREPO_DATA")
    if env:
        return Path(env) / "dev-extras.yaml"
    from importlib.resources import files

    return Path(str(files("pkgrepo") / "data" / "dev-extras.yaml"))


def dev_extras(kind: IndexKind, override: list[str], path: Path | None = None) -> list[str]:
    if override:
        return list(override)
    import yaml  # only the dev profile reads YAML

    path = path or extras_file()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise BadInput(f"{path}: cannot read the dev extras: {e.strerror}; pass --dev-extra NAME") from None
    except yaml.YAMLError as e:
        raise BadInput(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    extras = (data or {}).get(kind)
    if not isinstance(extras, list) or not all(isinstance(x, str) for x in extras):
        raise BadInput(f"{path}: `{kind}:` must be a list of package names; fix it or pass --dev-extra NAME")
    return extras


def present(extras: list[str], index: Index) -> list[str]:
    """Extras as names to resolve: `NAME?` is added only when the index has a package providing
    NAME (`pkgrepo?`: the package manager, where the index carries it and its Python runtime)."""
    from pkgrepo.resolve.deps import parse_dep

    out = []
    for extra in extras:
        if not extra.endswith("?"):
            out.append(extra)
        elif index.providers(parse_dep(extra[:-1]).name):
            out.append(extra[:-1])
    return out


def roots_for(
    profile: Profile, roots: list[str], kind: IndexKind, override: list[str], index: Index
) -> list[str]:
    if profile == "prod":
        return list(roots)
    return list(dict.fromkeys([*roots, *present(dev_extras(kind, override), index)]))
