"""One pipeline step as the command the sandbox runs: a `runs:` script, or a built-in step's
template from the registry (`pkgrepo.recipe.steps`) with its inputs filled in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pkgrepo import elf
from pkgrepo.builder.sandbox import BUILD
from pkgrepo.builder.staged import check_tree, read_head
from pkgrepo.recipe.load import LATE_VARS, VAR_RE, destdir
from pkgrepo.recipe.model import Recipe, Step
from pkgrepo.recipe.steps import STEPS, BuiltinStep


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: str


def render(template: str, values: dict[str, str]) -> str:
    """`${{NAME}}` replaced by `values[NAME]`; other variables are left as they are."""
    return VAR_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def builtin_values(spec: BuiltinStep, with_: dict[str, str], recipe: Recipe) -> dict[str, str]:
    """What a built-in step's templates may name, besides the run-time `${{build.jobs}}`."""
    values = {f"inputs.{k}": v for k, v in {**spec.inputs, **with_}.items()}
    values["targets.destdir"] = destdir(recipe.name)
    values["split.dbg"] = "true" if recipe.split.dbg else "false"
    return values


def step_command(step: Step, recipe: Recipe, jobs: int, build_dir: Path) -> Command | None:
    """What the sandbox runs for `step`; None when there is nothing to do (no ELF file to strip)."""
    src = f"{BUILD}/src/{step.working_directory}" if step.working_directory else f"{BUILD}/src"
    late = {"build.jobs": str(jobs)}
    assert set(late) == LATE_VARS
    if step.uses is None:
        return Command(["/bin/sh", "-exc", render(step.runs or "", late)], src)
    spec = STEPS[step.uses]
    values = builtin_values(spec, step.with_, recipe)
    # Late variables last: a `with:` value may name ${{build.jobs}} too.
    argv = ["/bin/sh", "-exc" if spec.trace else "-ec", render(render(spec.runs, values), late)]
    if spec.elf_files:
        staged = build_dir / "dest" / recipe.name
        check_tree(staged, build_dir)
        if not (args := elf_arguments(staged)):
            return None
        argv += [step.uses, *args]  # $0, then the pairs
    return Command(argv, render(spec.working_directory, values) if spec.working_directory else src)


def elf_arguments(root: Path) -> list[str]:
    """`kind file` pairs for every ELF file of a staged tree outside usr/lib/debug, read without
    following links: `object` for archives and relocatables, `program` for executables and libraries."""
    args = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel.startswith("usr/lib/debug/"):
                continue
            head = read_head(root, rel, elf.HEAD)
            kind = None if head is None else elf.kind(head)
            if kind in ("archive", "ET_REL"):
                args += ["object", rel]
            elif kind in ("ET_EXEC", "ET_DYN"):
                args += ["program", rel]
    return args
