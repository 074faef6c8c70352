"""YAML documents with the line of every value, and pydantic errors as one line at that line.

Shared by recipes and image specs; imports no model, so a command that reads
only image specs does not pay for the recipe models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pkgrepo.errors import BadInput
from pkgrepo.safeio import read_regular, shown

Lines = dict[tuple[Any, ...], int]


YAML_BYTES = 4 * 2**20  # the largest recipe or spec (with an inline app) is under 16 KiB
YAML_DEPTH = 32  # the deepest recipe or spec nests under 8
FILE_BYTES = 1 * 2**20  # the largest recipe or spec file


def read_yaml_file(path: Path, what: str) -> str:
    """The text of a user's YAML file (`what`: "the recipe", "the image spec"): a regular file of
    at most FILE_BYTES (a link to one is followed: it is the user's own input), UTF-8."""
    try:
        data = read_regular(path, what, FILE_BYTES, follow=True)
    except FileNotFoundError:
        raise BadInput(f"{shown(path)}: cannot read {what}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{shown(path)}: {what} is a directory, not a YAML file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{shown(path)}: {what} is not UTF-8 text") from None


def _to_python(node: yaml.Node, path: tuple[Any, ...], lines: Lines, where: str, seen: set[int]) -> Any:
    """Plain data from a composed node. An alias (`*NAME`) makes PyYAML hand the anchored node
    out again: no recipe or spec uses one, and a document of aliases of aliases (a billion
    laughs) would expand exponentially here, so a node met twice is refused."""
    if id(node) in seen:
        raise BadInput(
            f"{where}:{node.start_mark.line + 1}: YAML anchors and aliases (&NAME, *NAME) are not "
            "accepted; write the value out"
        )
    seen.add(id(node))
    if len(path) > YAML_DEPTH:
        raise BadInput(f"{where}:{node.start_mark.line + 1}: nested deeper than {YAML_DEPTH} levels")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, (*path, "<key>"), {}, where, seen)
            if not isinstance(key, str | int | float | bool | None):
                raise BadInput(f"{where}:{key_node.start_mark.line + 1}: a mapping key must be a plain value")
            if key in out:
                raise BadInput(f"{where}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            out[key] = _to_python(value_node, (*path, key), lines, where, seen)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, i), lines, where, seen) for i, v in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _line_for(loc: tuple[Any, ...], lines: Lines) -> int:
    # pydantic locations use aliases; walk up until a recorded node is found.
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return 1


def compose(text: str, where: str, what: str) -> tuple[Any, Lines]:
    """YAML text -> (plain data, the line of every value by its path); `what` describes the
    expected top-level mapping for the error when the document is not one."""
    if len(text) > YAML_BYTES:
        raise BadInput(f"{where}: {len(text)} characters, more than the limit of {YAML_BYTES}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise BadInput(f"{where}: nested deeper than {YAML_DEPTH} levels") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BadInput(f"{where}:{line}: YAML syntax error: {problem}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise BadInput(f"{where}:1: {what}")
    lines: Lines = {}
    return _to_python(node, (), lines, where, set()), lines


def validation_error(e: ValidationError, lines: Lines, where: str, schema: str) -> BadInput:
    """The first pydantic error as one line at the offending field's line."""
    err = e.errors()[0]
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (see `pkgrepo schema {schema}`)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (+{len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return BadInput(f"{where}:{_line_for(loc, lines)}: {field}: {msg}{more}")
