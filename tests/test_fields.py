"""The field checks recipes and image specs share (`recipe/fields.py`) accept the same values in both."""

from __future__ import annotations

import json

import pytest

from pkgrepo.errors import BadInput
from pkgrepo.image.spec import parse_spec
from pkgrepo.recipe.load import parse_recipe

RECIPE = """package:
  name: probe
  version: "1.0"
  description: probe
  license: MIT
sources:
  - url: https://example.invalid/probe.tar.gz
    sha256: "{sha}"
environment: {env}
pipeline:
  - runs: "true"
"""
SPEC = "name: probe\npackages: [busybox]\nenvironment: {env}\n"


def _accepts(parse, template: str, key: str) -> bool:
    env = json.dumps({key: "x"})  # JSON is YAML: the key exactly as given, newline included
    try:
        parse(template.format(env=env, sha="0" * 64), "probe.yaml")
    except BadInput as e:
        assert "\n" not in str(e).strip() or "\n" in key, str(e)
        return False
    return True


@pytest.mark.parametrize("key", ["PATH", "_X1", "a_b", "1A", "A-B", "A\n", "", "A B", "Ä"])
def test_environment_names_agree(key: str):
    recipe = _accepts(parse_recipe, RECIPE, key)
    spec = _accepts(parse_spec, SPEC, key)
    assert recipe == spec, f"{key!r}: recipe {'accepts' if recipe else 'refuses'} it, the image spec does not"
    assert recipe == (key in ("PATH", "_X1", "a_b"))


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("name", "app-1.2", True),
        ("name", "App", False),
        ("name", "app-", False),
        ("user", "www-data", True),
        ("user", "Root", False),
        ("user", "app\n", False),
        ("group", "_grp", True),
        ("group", "9grp", False),
    ],
)
def test_image_spec_names(field: str, value: str, ok: bool):
    name = value if field == "name" else "probe"
    users = [{"name": value, "uid": 1000}] if field == "user" else []
    groups = [{"name": value, "gid": 1000}] if field == "group" else []
    text = json.dumps({"name": name, "packages": ["busybox"], "accounts": {"users": users, "groups": groups}})
    if ok:
        parse_spec(text, "probe.yaml")
    else:
        with pytest.raises(BadInput, match=r"probe\.yaml:\d+: .*(not a valid|control character)"):
            parse_spec(text, "probe.yaml")
