"""Annotated field types shared by the recipe and image spec models: one check for one kind of
value, so that a recipe and an image spec accept exactly the same names.

Patterns are matched whole (`fullmatch`): `re.match` with `$` accepts a trailing newline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_-]*")  # a user or group name
IMAGE_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")  # an image or repository name


def matching(pattern: re.Pattern[str], problem: str) -> Callable[[str], str]:
    """A check that `pattern` matches a whole value; `problem` follows the value in the error."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} {problem}")
        return value

    return check


def env_names(value: dict[str, str]) -> dict[str, str]:
    """Every key of an `environment:` mapping is a variable name a shell accepts."""
    for key in value:
        if not ENV_NAME_RE.fullmatch(key):
            raise ValueError(f"{key!r} is not an environment variable name")
    return value


# Checks to annotate a field with (`Annotated[str, USER_NAME]`), and the types made of them.
ENV_NAMES = AfterValidator(env_names)
USER_NAME = AfterValidator(matching(ACCOUNT_RE, "is not a valid user name (lower case, digits, _ and -)"))
GROUP_NAME = AfterValidator(matching(ACCOUNT_RE, "is not a valid group name (lower case, digits, _ and -)"))
IMAGE_NAME = AfterValidator(
    matching(IMAGE_NAME_RE, "is not a valid name: use lower case letters, digits and . _ - between them")
)
Environment = Annotated[dict[str, str], ENV_NAMES]
