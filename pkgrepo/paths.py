"""Default locations, kept free of heavy imports (the resolver's start-up reads them)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache() -> Path:
    base = os.environ.get("PKGREPO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pkgrepo"
    )
    return Path(base)


def default_config() -> Path:
    """pkgrepo's configuration directory: `$XDG_CONFIG_HOME/pkgrepo` or `~/.config/pkgrepo`."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")) / "pkgrepo"


def default_packages() -> Path:
    """The packages directory when none is named: `$PKGREPO_PACKAGES`, or `packages` here."""
    return Path(os.environ.get("PKGREPO_PACKAGES", "packages"))
