"""Run one build in the sandbox: install its build dependencies, unpack its sources, apply its
patches and run its pipeline steps, leaving the staged tree that `pack` turns into packages."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from pkgrepo.builder import toolchain
from pkgrepo.builder.commands import step_command
from pkgrepo.builder.context import BuildContext
from pkgrepo.builder.sandbox import BUILD, Sandbox, StepTimeout, give_to_build_user
from pkgrepo.builder.staged import check_tree, real_dir
from pkgrepo.errors import BuildFailed
from pkgrepo.package.extract import check_package
from pkgrepo.package.rootfs import install
from pkgrepo.recipe.model import Step
from pkgrepo.source import source_filename


def step_label(i: int, step: Step) -> str:
    return f"step {i + 1} ({step.name or step.uses or 'runs'})"


def source_date_epoch(src: Path) -> int:
    """The newest mtime in the unpacked archives: what the sources themselves say.

    Read with lstat only. Unextracted files are copied in after this is taken and get
    this time as their mtime, so the copy time never reaches a build.
    """
    newest = 0
    for dirpath, _dirs, files in os.walk(src):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, int(os.lstat(os.path.join(dirpath, name)).st_mtime))
    return newest


def run_pipeline(ctx: BuildContext, work: Path) -> tuple[Path, int]:
    """Build in the empty directory `work`; returns the staged tree and its SOURCE_DATE_EPOCH."""
    recipe = ctx.file.recipe
    build_dir, sysroot, tc = work / "build", work / "sysroot", work / "tc"
    work.chmod(0o711)  # the build user passes through to its own directory
    for d in (
        build_dir,
        build_dir / "src",
        build_dir / "home",
        build_dir / "dest",
        build_dir / "dest" / recipe.name,
    ):
        d.mkdir()
        give_to_build_user(d)
    (sysroot / "lib").mkdir(parents=True)
    if ctx.deps:
        ctx.report(f"{recipe.name}: installing {len(ctx.deps)} build dependencies")
        install([check_package(Path(p.location)) for p in ctx.deps], sysroot)
    limit = recipe.package.timeout
    _unpack(ctx, Sandbox(build_dir), limit)
    real_dir(build_dir, build_dir / "src")
    sde = recipe.package.source_date_epoch or source_date_epoch(build_dir / "src")
    plain = [(spec, file) for spec, file in zip(recipe.sources, ctx.sources, strict=True) if not spec.extract]
    for spec, file in plain:
        script = 'mkdir -p -- "$1" && cat > "$1/$2" && touch -d "@$3" -- "$1/$2"'
        with open(file, "rb") as f:
            _run(
                ctx,
                f"source {source_filename(spec)}",
                Sandbox(build_dir),
                limit,
                [
                    "/bin/sh",
                    "-ec",
                    script,
                    "copy",
                    f"{BUILD}/src/{spec.destination}",
                    source_filename(spec),
                    str(sde),
                ],
                stdin=f.fileno(),
            )
    for spec in recipe.patches:
        with tempfile.TemporaryFile() as f:
            f.write(ctx.patches[spec.file])
            f.seek(0)
            _run(
                ctx,
                f"patch {spec.file}",
                Sandbox(build_dir),
                limit,
                ["patch", f"-p{spec.strip}", "--no-backup-if-mismatch"],
                cwd=f"{BUILD}/src",
                stdin=f.fileno(),
                failed="does not apply",
            )
    env = toolchain.prepare(tc, sysroot)
    env.update({"SOURCE_DATE_EPOCH": str(sde), **recipe.environment})
    box = Sandbox(
        build_dir, sysroot, tc, env, ctx.variation.hostname, ctx.variation.umask, ctx.variation.nice
    )
    staged = build_dir / "dest" / recipe.name
    for i, step in enumerate(recipe.pipeline):
        label = step_label(i, step)
        ctx.report(f"{recipe.name}: {label}")
        command = step_command(step, recipe, ctx.variation.jobs, build_dir)
        if command is not None:
            _run(ctx, label, box, step.timeout or limit, command.argv, cwd=command.cwd)
    check_tree(staged, build_dir)
    return staged, sde


def _unpack(ctx: BuildContext, box: Sandbox, limit: int) -> None:
    """Unpack each archive with tar inside the sandbox; the cached file is only its standard input.

    The file is copied to the sandbox's own /tmp first: tar detects the compression
    only of a file it can open by name.
    """
    script = (
        'cat > /tmp/source && mkdir -p -- "$1" && exec tar -xf /tmp/source -C "$1" '
        '--strip-components="$2" --no-same-owner --no-same-permissions'
    )
    for spec, file in zip(ctx.file.recipe.sources, ctx.sources, strict=True):
        if not spec.extract:
            continue
        dest = f"{BUILD}/src/{spec.destination}"
        argv = ["/bin/sh", "-ec", script, "unpack", dest, str(spec.strip_components)]
        with open(file, "rb") as f:
            _run(
                ctx,
                f"source {source_filename(spec)}",
                box,
                limit,
                argv,
                stdin=f.fileno(),
                failed="could not be unpacked by tar (not an archive? then set extract: false)",
            )


def _run(
    ctx: BuildContext,
    label: str,
    box: Sandbox,
    timeout: int,
    argv: list[str],
    cwd: str = f"{BUILD}/src",
    stdin: int | None = None,
    failed: str = "failed",
) -> None:
    path, log = ctx.file.path, ctx.log
    try:
        rc = box.run(argv, log, timeout, cwd, stdin)
    except StepTimeout:
        raise BuildFailed(
            f"{path}: {label} was killed after its time limit of {timeout} s; "
            f"raise `timeout:` on the step or the package if it needs longer"
        ) from None
    if rc != 0:
        raise BuildFailed(f"{path}: {label} {failed} (exit code {rc}); see {log}")
