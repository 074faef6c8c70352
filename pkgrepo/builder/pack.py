"""Turn a build's staged tree into packages: split it into parts, scan each, check that every need
is met, write the archives with their SBOMs and evidence, and record the build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pkgrepo.attest.evidence import manifest_with_sbom, write_evidence
from pkgrepo.builder.context import BuildContext
from pkgrepo.builder.records import BuildRecord, write_record
from pkgrepo.builder.sca import Findings, analyse
from pkgrepo.builder.split import Part, split
from pkgrepo.builder.staged import read_file, write_file
from pkgrepo.errors import BadInput, BuildFailed
from pkgrepo.package.archive import write_package
from pkgrepo.package.meta import PackageInfo
from pkgrepo.resolve.deps import COMMAND, is_virtual, parse_dep, provide_name, soname


def make_packages(ctx: BuildContext, staged: Path, sde: int) -> list[Path]:
    """Package the staged tree into `ctx.dest_dir`: all packages or, on any failure, none."""
    recipe = ctx.file.recipe
    parts = split(staged, recipe)
    main = parts[0]
    infos: list[tuple[Part, PackageInfo]] = []
    findings = {p.name: analyse(staged, p.files) for p in parts}
    for part in parts:
        f = findings[part.name]
        depends = set(part.dependencies.runtime) | f.depends
        if part.kind in ("dev", "dbg") and main.files:
            depends.add(f"{main.name}={recipe.full_version}")
        provides = set(part.dependencies.provides) | f.provides
        infos.append(
            (
                part,
                PackageInfo(
                    name=part.name,
                    version=recipe.package.version,
                    epoch=recipe.package.epoch,
                    release=recipe.package.release,
                    description=part.description,
                    license=recipe.package.license,
                    homepage=recipe.package.homepage,
                    origin=recipe.name,
                    depends=sorted(depends - {provide_name(p) for p in provides}),
                    provides=sorted(provides),
                    build_date=sde,
                    upstream=recipe.upstream_purl,
                    cpe=recipe.upstream_cpe,
                    fixes=recipe.fixes,
                ),
            )
        )
    check_libraries(ctx, infos, findings)
    staging = ctx.dest_dir / f".staging-{recipe.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = []
        for part, info in infos:
            manifest = manifest_with_sbom(staged, part.files, recipe, info, write_file)  # SBOM inside
            size = sum(e.size for e in manifest)
            info = info.replace(installed_size=size)
            written.append((write_package(staged, manifest, info, staging / info.filename), info))
        final = []
        for w, info in written:
            if ctx.into_index:
                final.append(ctx.index.move_in(w, info))
            else:  # a scratch directory of the reproducibility check
                os.replace(w, ctx.dest_dir / w.name)
                final.append(ctx.dest_dir / w.name)
        # SBOMs and the signed provenance beside the packages
        write_evidence(ctx.file.path, recipe, staged, final, ctx.deps, read_file, ctx.key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_record(ctx.dest_dir, recipe.name, BuildRecord(ctx.key, [f.name for f in final]))
    return final


def check_libraries(
    ctx: BuildContext, infos: list[tuple[Part, PackageInfo]], findings: dict[str, Findings]
) -> None:
    """Every `so:` need and every script interpreter is met by this build's packages, its build
    deps or its declared deps: otherwise the package would only work on the build host.

    `#!/bin/sh` is the one interpreter path taken as given: every image with scripts has a
    POSIX shell, and `cmd:sh` stays a dependency that the resolver satisfies.
    """
    path = ctx.file.path
    provided: set[str] = set()
    for _part, info in infos:
        provided |= {provide_name(p) for p in info.provides}
    pool = list(ctx.deps)
    runtime = [d for _p, i in infos for d in i.depends if not is_virtual(d)]
    own = {i.name for _p, i in infos}
    runtime = [d for d in runtime if parse_dep(d).name not in own]
    if runtime and ctx.index.directory.is_dir():
        try:
            pool += ctx.index.closure(runtime)
        except BadInput as e:
            raise BuildFailed(f"{path}: dependencies.runtime: {e}") from None
    for pkg in pool:
        provided |= {name for name, _v in pkg.provides}
    for part, info in infos:
        for dep in info.depends:
            lib = soname(dep)
            if lib is not None and dep not in provided:
                files = findings[part.name].needed_by.get(dep, ["?"])
                raise BuildFailed(
                    f"{path}: /{files[0]} (package {info.name}) needs {lib} but no package of "
                    f"this build, its build-depends or its dependencies.runtime provides {dep}; "
                    "add the library's package to build-depends or dependencies.runtime"
                )
        for script, interp in sorted(findings[part.name].interpreters.items()):
            dep = f"{COMMAND}{os.path.basename(interp)}"
            if interp != "/bin/sh" and dep not in provided:
                raise BuildFailed(
                    f"{path}: /{script} (package {info.name}) starts with #!{interp}, which no package of "
                    f"this build, its build-depends or its dependencies.runtime provides ({dep}); "
                    "make the build use /bin/sh (e.g. CONFIG_SHELL=/bin/sh) or a packaged interpreter"
                )
