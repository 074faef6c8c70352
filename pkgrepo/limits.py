"""Limits a user may set in the environment (deadlines, sizes), checked once, as bad input when wrong."""

from __future__ import annotations

import math
import os

from pkgrepo.errors import BadInput


def env_seconds(name: str, default: float) -> float:
    """Seconds from `$name` (a number above 0), else `default`."""
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise BadInput(f"{name}={text!r}: expected a number of seconds above 0 (default {default:g})")
    return value


def env_bytes(name: str, default: int) -> int:
    """A byte count from `$name` (a whole number above 0), else `default`."""
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0 or len(text) > 18:
        raise BadInput(f"{name}={text!r}: expected a whole number of bytes above 0 (default {default})")
    return int(text)
