"""The step registry: every built-in step is one entry, renders, and is documented; the model checks `with:`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pkgrepo import elf
from pkgrepo.builder.commands import builtin_values, render, step_command
from pkgrepo.recipe.model import Recipe, Step
from pkgrepo.recipe.steps import CONFIGURE, STEPS, BuiltinStep
from tests.helpers.cli import ROOT


def _recipe(pipeline: list[dict], dbg: bool = False) -> Recipe:
    return Recipe.model_validate(
        {
            "package": {"name": "probe", "version": "1.0", "description": "d", "license": "MIT"},
            "sources": [{"url": "https://example.invalid/s.tar.gz", "sha256": "0" * 64}],
            "pipeline": pipeline,
            "split": {"dbg": dbg},
        }
    )


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_entry_renders_with_its_defaults(name: str) -> None:
    spec = STEPS[name]
    script = render(
        render(spec.runs, builtin_values(spec, {}, _recipe([{"uses": name}]))), {"build.jobs": "3"}
    )
    assert "${{" not in script
    if spec.working_directory:
        assert (
            render(spec.working_directory, builtin_values(spec, {}, _recipe([{"runs": "true"}])))
            == "/build/dest/probe"
        )


def test_builtin_steps_render_as_documented(tmp_path: Path) -> None:
    recipe = _recipe(
        [
            {"uses": "autoconf/configure", "with": {"opts": "--disable-nls"}},
            {"uses": "make", "with": {"target": "all", "opts": "V=${{build.jobs}}"}},
            {"uses": "autoconf/make-install"},
            {"runs": "echo ${{build.jobs}}", "working-directory": "sub"},
        ]
    )
    commands = [step_command(s, recipe, 4, tmp_path) for s in recipe.pipeline]
    assert [c.argv[2] if c else None for c in commands] == [
        f"{CONFIGURE} --disable-nls",
        "make -j4 all V=4",  # a `with:` value gets the run-time variables too
        "make install DESTDIR=/build/dest/probe ",
        "echo 4",
    ]
    assert [c.cwd if c else None for c in commands] == ["/build/src"] * 3 + ["/build/src/sub"]
    assert {c.argv[1] if c else None for c in commands} == {"-exc"}


def test_strip_runs_only_over_elf_files(tmp_path: Path) -> None:
    staged = tmp_path / "dest" / "probe"
    (staged / "usr/bin").mkdir(parents=True)
    (staged / "usr/bin/script").write_text("#!/bin/sh\n")
    recipe = _recipe([{"uses": "strip"}], dbg=True)
    assert step_command(recipe.pipeline[0], recipe, 1, tmp_path) is None  # nothing to strip: not run
    (staged / "usr/bin/prog").write_bytes(Path("/bin/true").read_bytes())
    (staged / "usr/lib").mkdir()
    (staged / "usr/lib/libx.a").write_bytes(b"!<arch>\n")
    command = step_command(recipe.pipeline[0], recipe, 1, tmp_path)
    assert command is not None and command.cwd == "/build/dest/probe"
    pairs = sorted(zip(command.argv[4::2], command.argv[5::2], strict=True))
    assert command.argv[1:4:2] == ["-ec", "strip"]
    assert pairs == [("object", "usr/lib/libx.a"), ("program", "usr/bin/prog")]
    assert "[ true = true ]" in command.argv[2]  # split.dbg keeps the debug info


def test_adding_a_step_is_adding_an_entry() -> None:
    registry = {
        **STEPS,
        "meson/setup": BuiltinStep("meson setup", "meson setup ${{inputs.opts}} build", {"opts": "-Db=1"}),
    }
    spec = registry["meson/setup"]
    assert (
        render(spec.runs, builtin_values(spec, {}, _recipe([{"runs": "true"}]))) == "meson setup -Db=1 build"
    )
    assert (
        render(spec.runs, builtin_values(spec, {"opts": "-Dc=2"}, _recipe([{"runs": "true"}])))
        == "meson setup -Dc=2 build"
    )


def test_unknown_input_names_the_allowed_ones() -> None:
    with pytest.raises(ValidationError, match=r"make does not take x \(it takes opts, target\)"):
        Step.model_validate({"uses": "make", "with": {"x": "1"}})
    with pytest.raises(ValidationError, match=r"strip does not take opts \(it takes nothing\)"):
        Step.model_validate({"uses": "strip", "with": {"opts": "1"}})


def test_docs_list_every_step() -> None:
    text = (ROOT / "docs/recipes.md").read_text()
    table = text.split("## Built-in steps", 1)[1].split("\n\n", 2)[1]  # the table after the heading
    documented = re.findall(r"^\| `([a-z/-]+)` \|", table, re.M)
    assert sorted(documented) == sorted(STEPS)
    for name, spec in STEPS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert sorted(re.findall(r"`([a-z-]+)`", row.split("|")[3])) == sorted(spec.inputs)


def test_one_elf_sniffer() -> None:
    assert elf.kind(Path("/bin/true").read_bytes()[: elf.HEAD]) in ("ET_EXEC", "ET_DYN")
    assert elf.kind(b"!<arch>\n") == "archive"
    assert elf.kind(b"#!/bin/sh\n") is None
    dyn = elf.read_dynamic(Path("/bin/true"))
    assert dyn is not None and dyn.interp and dyn.needed
