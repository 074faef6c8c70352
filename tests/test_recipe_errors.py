"""Malformed recipes: one line naming the file (and line or field), exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.recipes import make_tarball
from tests.helpers.servers import http_files

BAD = ROOT / "tests/fixtures/bad"

EXPECTED = {
    "unknown-field.yaml": ":6: package.colour: unknown field",
    "wrong-type.yaml": ":4: package.release: Input should be a valid integer",
    "bad-sha256.yaml": ":8: sources.0.sha256: String should match pattern",
    "missing-source.yaml": ":1: sources: required field is missing",
    "source-without-origin.yaml": ":7: sources.0: a source needs `url` or `debian`",
    "yaml-syntax.yaml": ":5: YAML syntax error",
    "unknown-variable.yaml": ":7: unknown variable ${{package.verison}}",
    "unknown-step.yaml": ":10: pipeline.0.uses: Input should be",
    "step-both.yaml": ":10: pipeline.0: a step needs exactly one of `uses` or `runs`",
    "bad-with-key.yaml": ":10: pipeline.0: autoconf/configure does not take prefix",
    "bad-name.yaml": ":2: package.name: String should match pattern",
    "duplicate-key.yaml": ":4: duplicate key 'version'",
    "not-a-mapping.yaml": ":1: a recipe is a YAML mapping",
    "empty-pipeline.yaml": ":9: pipeline: List should have at least 1 item",
    "bad-dependency.yaml": ":7: package.dependencies.runtime: 'foo >= ' is not a dependency",
    "escaping-destination.yaml": ":9: sources.0.destination: destination must be a relative path",
    "name-mismatch.yaml": ": file is named 'name-mismatch' but package.name is 'something-else'",
}


def test_every_fixture_is_covered():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_recipe(name: str, tmp_path: Path):
    recipes, out = tmp_path / "recipes", tmp_path / "out"
    recipes.mkdir()
    (recipes / name).write_bytes((BAD / name).read_bytes())
    proc = run_cli("build", "--all", "--recipes", str(recipes), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{recipes / name}{EXPECTED[name]}" in lines[0], lines[0]
    assert not out.exists()
    assert run_cli("lint", str(BAD / name)).returncode == 2


def _recipe(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(body)
    return path


HEADER = """package:
  name: {name}
  version: "1.0"
  description: test recipe
  license: MIT
sources:
  - url: {url}
    sha256: "{sha}"
"""


def test_dependency_cycle_names_the_cycle(tmp_path: Path):
    sha = make_tarball(tmp_path / "s.tar.gz", {"README": "x"})
    for name, dep in (("alpha", "beta-dev"), ("beta", "gamma"), ("gamma", "alpha")):
        _recipe(
            tmp_path,
            name,
            HEADER.format(name=name, url="https://mirror.invalid/s.tar.gz", sha=sha)
            + f"build-depends: [{dep}]\npipeline:\n  - runs: 'true'\n",
        )
    out = tmp_path / "out"
    proc = run_cli("build", "--all", "--recipes", str(tmp_path), "--out", str(out))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line
    assert "cycle" in line and "alpha" in line and "beta" in line and "gamma" in line
    assert not out.exists()


def test_wrong_checksum_fails_before_unpacking(tmp_path: Path):
    tarball = tmp_path / "s.tar.gz"
    make_tarball(tarball, {"README": "x"})
    wrong = "1" * 64
    out, cache = tmp_path / "out", tmp_path / "cache"
    with http_files(tmp_path) as base:
        _recipe(
            tmp_path,
            "wrongsum",
            HEADER.format(name="wrongsum", url=f"{base}/s.tar.gz", sha=wrong)
            + "pipeline:\n  - runs: 'touch /build/unpacked-marker'\n",
        )
        proc = run_cli(
            "build", "wrongsum", "--recipes", str(tmp_path), "--out", str(out), "--cache", str(cache)
        )
    assert proc.returncode == 2, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("pkgrepo: error:")]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0])
    line = errors[0]
    assert "wrongsum.yaml" in line and f"the recipe pins ({wrong})" in line
    assert make_tarball(tmp_path / "again.tar.gz", {"README": "x"}) not in line  # no digest oracle
    assert not any(out.glob("*.pkg.tar.zst"))
    assert not (cache / "sha256" / wrong).exists()
    assert [p.name for p in (cache / "sha256").iterdir()] == []  # the bad download was not kept


def test_unknown_recipe_suggests(tmp_path: Path):
    proc = run_cli("build", "helo", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "did you mean hello" in proc.stderr


def test_schema_is_json_schema():
    proc = run_cli("schema", "recipe", check=True)
    schema = json.loads(proc.stdout)
    assert schema["type"] == "object"
    assert {"package", "sources", "pipeline"} <= set(schema["required"])
    assert "build-depends" in schema["properties"]


def test_every_shipped_recipe_lints():
    recipes = sorted(str(p) for p in (ROOT / "recipes").glob("*.yaml"))
    assert {"musl", "zlib", "hello", "busybox"} <= {Path(r).stem for r in recipes}  # what the fixtures build
    proc = run_cli("lint", *recipes, check=True)
    assert proc.stdout.splitlines() == [f"{r}: ok" for r in recipes]
