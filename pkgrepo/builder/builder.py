"""Build one recipe: fetch, unpack, run the pipeline in the sandbox, split, scan, package.

Packages are written to a staging directory and moved into the output
directory only when every one of them was written, so a failed build leaves
no partial package. The cache key is the digest of every input that can
change the output: the recipe, its patches, the exact build-dependency
packages and the host toolchain's versions.

One class on purpose, past 400 lines: the build's steps share its inputs, its
directories and its records, and reading it top to bottom is reading one build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo import hosttools
from pkgrepo.attest.dsse import public_key_bytes
from pkgrepo.attest.evidence import PUBLIC_KEY, manifest_with_sbom, write_evidence
from pkgrepo.builder import toolchain
from pkgrepo.builder.cache import BuildCache, DirectoryCache, check_hit
from pkgrepo.builder.commands import step_command
from pkgrepo.builder.outdir import PackagesDir
from pkgrepo.builder.sandbox import BUILD, Sandbox, StepTimeout, give_to_build_user
from pkgrepo.builder.sca import Findings, analyse
from pkgrepo.builder.split import Part, split
from pkgrepo.builder.staged import check_tree, open_regular, read_file, real_dir, write_file
from pkgrepo.digest import code_digest
from pkgrepo.errors import BadInput, BuildFailed
from pkgrepo.package.archive import read_info, write_package
from pkgrepo.package.extract import check_package
from pkgrepo.package.meta import FORMAT, PackageInfo, canonical_json
from pkgrepo.package.rootfs import install
from pkgrepo.recipe.model import Recipe, Step
from pkgrepo.resolve.deps import parse_dep
from pkgrepo.resolve.model import Package
from pkgrepo.source import SourceCache, source_filename

RECORDS = ".builds"
LOGS = "logs"


@dataclass(frozen=True)
class Variation:
    """What differs between the two builds of `--check-reproducible`."""

    hostname: str = "pkgrepo"
    umask: int = 0o022
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)


@dataclass
class BuildResult:
    name: str
    packages: list[Path]
    cached: bool
    seconds: float
    log: Path


Report = Callable[[str], None]


def step_label(i: int, step: Step) -> str:
    return f"step {i + 1} ({step.name or step.uses or 'runs'})"


def cache_key(recipe: Recipe, patches: dict[str, str], deps: dict[str, str]) -> str:
    """The digest of every input that can change a build's output (`deps`: name -> package sha256)."""
    data = {
        "format": FORMAT,
        "pkgrepo": code_digest(),
        "recipe": recipe.model_dump(mode="json", by_alias=True),
        "patches": patches,
        "build-deps": deps,
        "toolchain": hosttools.identity(),
    }
    return hashlib.sha256(canonical_json(data)).hexdigest()


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


class Builder:
    def __init__(
        self,
        out: Path,
        cache: SourceCache,
        report: Report = lambda _m: None,
        caches: Sequence[BuildCache] = (),
        cache_to: DirectoryCache | None = None,
    ):
        self.out = Path(out)
        self.cache = cache
        self.report = report
        self.index = PackagesDir(self.out)  # read once, kept current as packages are written
        self.caches = list(caches)  # shared build caches asked before building (--cache-from)
        self.cache_to = cache_to  # where finished builds are also stored (--cache-to)

    def log_path(self, name: str) -> Path:
        return self.out / LOGS / f"{name}.log"

    def record_path(self, name: str) -> Path:
        return self.out / RECORDS / f"{name}.json"

    def cached(self, name: str, key: str) -> list[Path] | None:
        record = self.record_path(name)
        if not record.exists():
            return None
        data = json.loads(record.read_text())
        files = [self.out / f for f in data["packages"]]
        if data.get("key") == key and all(f.exists() for f in files):
            return files
        return None

    def tested(self, name: str) -> bool:
        record = self.record_path(name)
        return record.exists() and bool(json.loads(record.read_text()).get("tested"))

    def mark_tested(self, name: str) -> None:
        record = self.record_path(name)
        data = json.loads(record.read_text())
        record.write_bytes(canonical_json({**data, "tested": True}))

    def _inputs(self, path: Path, recipe: Recipe) -> tuple[list[Package], dict[str, bytes], str]:
        """The build dependencies, the patches and the cache key of everything that can change the output."""
        deps = self._build_deps(recipe, str(path))
        patches = self._patches(path, recipe)
        digests = {p.name: self.index.digest(Path(p.origin)) for p in deps}
        return (
            deps,
            patches,
            cache_key(recipe, {p: hashlib.sha256(b).hexdigest() for p, b in patches.items()}, digests),
        )

    def lookup(self, path: Path, recipe: Recipe) -> BuildResult | None:
        """The packages of an earlier build from the same inputs: still here, or in a shared build cache."""
        start = time.monotonic()
        _deps, _patches, key = self._inputs(path, recipe)
        hit = self.cached(recipe.name, key) or self._from_caches(recipe.name, key)
        if hit is None:
            return None
        return BuildResult(recipe.name, hit, True, time.monotonic() - start, self.log_path(recipe.name))

    def _from_caches(self, name: str, key: str) -> list[Path] | None:
        """A build with this key from a shared cache, checked and moved into the packages directory."""
        for cache in self.caches:
            self.out.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=self.out))
            try:
                files = cache.get(name, key, staging)
                if not files:
                    continue
                packages = [(f, read_info(f)) for f in files if f.name.endswith(".pkg.tar.zst")]
                for f, info in packages:
                    if (info.origin, info.build_key) != (name, key) or f.name != info.filename:
                        raise BadInput(
                            f"{cache.label}: {f.name} is not a package of {name} built from "
                            "these inputs; the build cache is wrong, do not use it"
                        )
                signer = check_hit(cache, name, key, files)  # signed by a key trusted for this cache
                for f in files:
                    if f.name != PUBLIC_KEY and not f.name.endswith(".pkg.tar.zst"):
                        os.replace(f, self.out / f.name)  # SBOMs and provenance first, then the packages
                if not (self.out / PUBLIC_KEY).exists():  # the key that verified, never the cache's file
                    (self.out / PUBLIC_KEY).write_bytes(public_key_bytes(signer))
                final = [self.index.move_in(f, info) for f, info in packages]
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            self._record(self.out, name, key, final)
            log = self.log_path(name)  # a build's log is always there; its tests append to it
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"taken from the build cache {cache.label} (key {key})\n")
            self.report(f"{name}: taken from the build cache {cache.label}")
            return final
        return None

    def _record(self, dest_dir: Path, name: str, key: str, packages: list[Path]) -> None:
        record = dest_dir / RECORDS / f"{name}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_bytes(canonical_json({"key": key, "packages": [f.name for f in packages]}))

    def build(
        self,
        path: Path,
        recipe: Recipe,
        variation: Variation | None = None,
        out: Path | None = None,
        force: bool = False,
    ) -> BuildResult:
        """Build `recipe` (read from `path`), taking build dependencies from `self.out`.

        `out` redirects the packages (the reproducibility check builds into scratch directories).
        """
        variation = variation or Variation()
        dest_dir = Path(out or self.out)
        start = time.monotonic()
        where = str(path)
        deps, patches, key = self._inputs(path, recipe)
        log = (dest_dir / LOGS / f"{recipe.name}.log") if out else self.log_path(recipe.name)
        if (
            out is None
            and not force
            and (hit := self.cached(recipe.name, key) or self._from_caches(recipe.name, key))
        ):
            return BuildResult(recipe.name, hit, True, time.monotonic() - start, log)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        sources = [self.cache.fetch(s, where) for s in recipe.sources]  # verified before unpacking
        work = Path(tempfile.mkdtemp(prefix=f"pkgrepo-{recipe.name}-"))
        try:
            packages = self._build_in(
                work, path, recipe, variation, deps, sources, patches, key, log, dest_dir
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.cache_to is not None and out is None:
            sidecars = [s for p in packages for s in sorted(self.out.glob(f"{p.name}.*"))]
            if (self.out / PUBLIC_KEY).is_file():
                sidecars.append(self.out / PUBLIC_KEY)  # what verifies the provenance
            self.cache_to.put(recipe.name, key, [*packages, *sidecars])
        return BuildResult(recipe.name, packages, False, time.monotonic() - start, log)

    def _build_deps(self, recipe: Recipe, where: str) -> list[Package]:
        if not recipe.build_depends:
            return []
        if not self.out.is_dir():
            raise BadInput(
                f"{where}: build-depends {', '.join(recipe.build_depends)} but {self.out} has no packages"
            )
        try:
            return self.index.closure(recipe.build_depends)
        except BadInput as e:
            raise BadInput(f"{where}: build-depends: {e}; build that recipe first") from None

    def _patches(self, path: Path, recipe: Recipe) -> dict[str, bytes]:
        """Each patch's bytes, read beside the recipe without following links (a link could name any host file)."""
        out = {}
        for p in recipe.patches:
            try:
                f = open_regular(path.parent, p.file)
            except (OSError, BuildFailed):
                f = None
            if f is None:
                raise BadInput(
                    f"{path}: patches: {p.file} is not a regular file beside the recipe (links are not followed)"
                )
            with f:
                out[p.file] = f.read()
        return out

    def _build_in(
        self,
        work: Path,
        path: Path,
        recipe: Recipe,
        variation: Variation,
        deps: list[Package],
        sources: list[Path],
        patches: dict[str, bytes],
        key: str,
        log: Path,
        dest_dir: Path,
    ) -> list[Path]:
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
        if deps:
            self.report(f"{recipe.name}: installing {len(deps)} build dependencies")
            install([check_package(Path(p.origin)) for p in deps], sysroot)
        limit = recipe.package.timeout
        self._unpack(path, recipe, sources, Sandbox(build_dir), log, limit)
        real_dir(build_dir, build_dir / "src")
        sde = recipe.package.source_date_epoch or source_date_epoch(build_dir / "src")
        plain = [(spec, file) for spec, file in zip(recipe.sources, sources, strict=True) if not spec.extract]
        for spec, file in plain:
            script = 'mkdir -p -- "$1" && cat > "$1/$2" && touch -d "@$3" -- "$1/$2"'
            with open(file, "rb") as f:
                self._run(
                    path,
                    f"source {source_filename(spec)}",
                    Sandbox(build_dir),
                    limit,
                    log,
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
                f.write(patches[spec.file])
                f.seek(0)
                self._run(
                    path,
                    f"patch {spec.file}",
                    Sandbox(build_dir),
                    limit,
                    log,
                    ["patch", f"-p{spec.strip}", "--no-backup-if-mismatch"],
                    cwd=f"{BUILD}/src",
                    stdin=f.fileno(),
                    failed="does not apply",
                )
        env = toolchain.prepare(tc, sysroot)
        env.update({"SOURCE_DATE_EPOCH": str(sde), **recipe.environment})
        box = Sandbox(build_dir, sysroot, tc, env, variation.hostname, variation.umask)
        staged = build_dir / "dest" / recipe.name
        for i, step in enumerate(recipe.pipeline):
            label = step_label(i, step)
            self.report(f"{recipe.name}: {label}")
            command = step_command(step, recipe, variation.jobs, build_dir)
            if command is not None:
                self._run(path, label, box, step.timeout or limit, log, command.argv, cwd=command.cwd)
        check_tree(staged, build_dir)
        return self._package(path, recipe, staged, deps, sde, key, dest_dir)

    def _unpack(
        self, path: Path, recipe: Recipe, sources: list[Path], box: Sandbox, log: Path, limit: int
    ) -> None:
        """Unpack each archive with tar inside the sandbox; the cached file is only its standard input.

        The file is copied to the sandbox's own /tmp first: tar detects the compression
        only of a file it can open by name.
        """
        script = (
            'cat > /tmp/source && mkdir -p -- "$1" && exec tar -xf /tmp/source -C "$1" '
            '--strip-components="$2" --no-same-owner --no-same-permissions'
        )
        for spec, file in zip(recipe.sources, sources, strict=True):
            if not spec.extract:
                continue
            dest = f"{BUILD}/src/{spec.destination}"
            argv = ["/bin/sh", "-ec", script, "unpack", dest, str(spec.strip_components)]
            with open(file, "rb") as f:
                self._run(
                    path,
                    f"source {source_filename(spec)}",
                    box,
                    limit,
                    log,
                    argv,
                    stdin=f.fileno(),
                    failed="could not be unpacked by tar (not an archive? then set extract: false)",
                )

    def _run(
        self,
        path: Path,
        label: str,
        box: Sandbox,
        timeout: int,
        log: Path,
        argv: list[str],
        cwd: str = f"{BUILD}/src",
        stdin: int | None = None,
        failed: str = "failed",
    ) -> None:
        try:
            rc = box.run(argv, log, timeout, cwd, stdin)
        except StepTimeout:
            raise BuildFailed(
                f"{path}: {label} was killed after its time limit of {timeout} s; "
                f"raise `timeout:` on the step or the package if it needs longer"
            ) from None
        if rc != 0:
            raise BuildFailed(f"{path}: {label} {failed} (exit code {rc}); see {log}")

    def _package(
        self,
        path: Path,
        recipe: Recipe,
        staged: Path,
        deps: list[Package],
        sde: int,
        key: str,
        dest_dir: Path,
    ) -> list[Path]:
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
                        depends=sorted(depends - {p.split("=", 1)[0] for p in provides}),
                        provides=sorted(provides),
                        build_date=sde,
                        build_key=key,
                        upstream=recipe.upstream_purl,
                        cpe=recipe.upstream_cpe,
                        fixes=recipe.fixes,
                    ),
                )
            )
        self._check_libraries(path, recipe, infos, findings, deps)
        staging = dest_dir / f".staging-{recipe.name}-{os.getpid()}"
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
                if dest_dir == self.out:
                    final.append(self.index.move_in(w, info))
                else:  # a scratch directory of the reproducibility check
                    os.replace(w, dest_dir / w.name)
                    final.append(dest_dir / w.name)
            write_evidence(path, recipe, staged, final, deps, read_file)  # SBOMs, provenance beside
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._record(dest_dir, recipe.name, key, final)
        return final

    def _check_libraries(
        self,
        path: Path,
        recipe: Recipe,
        infos: list[tuple[Part, PackageInfo]],
        findings: dict[str, Findings],
        deps: list[Package],
    ) -> None:
        """Every `so:` need and every script interpreter is met by this build's packages, its build
        deps or its declared deps: otherwise the package would only work on the build host.

        `#!/bin/sh` is the one interpreter path taken as given: every image with scripts has a
        POSIX shell, and `cmd:sh` stays a dependency that the resolver satisfies.
        """
        provided: set[str] = set()
        for _part, info in infos:
            provided |= {p.split("=", 1)[0] for p in info.provides}
        pool = list(deps)
        runtime = [d for _p, i in infos for d in i.depends if not d.startswith(("so:", "cmd:", "pc:"))]
        own = {i.name for _p, i in infos}
        runtime = [d for d in runtime if parse_dep(d).name not in own]
        if runtime and self.out.is_dir():
            try:
                pool += self.index.closure(runtime)
            except BadInput as e:
                raise BuildFailed(f"{path}: dependencies.runtime: {e}") from None
        for pkg in pool:
            provided |= {name for name, _v in pkg.provides}
        for part, info in infos:
            for dep in info.depends:
                if dep.startswith("so:") and dep not in provided:
                    files = findings[part.name].needed_by.get(dep, ["?"])
                    raise BuildFailed(
                        f"{path}: /{files[0]} (package {info.name}) needs {dep[3:]} but no package of "
                        f"this build, its build-depends or its dependencies.runtime provides {dep}; "
                        "add the library's package to build-depends or dependencies.runtime"
                    )
            for script, interp in sorted(findings[part.name].interpreters.items()):
                dep = f"cmd:{os.path.basename(interp)}"
                if interp != "/bin/sh" and dep not in provided:
                    raise BuildFailed(
                        f"{path}: /{script} (package {info.name}) starts with #!{interp}, which no package of "
                        f"this build, its build-depends or its dependencies.runtime provides ({dep}); "
                        "make the build use /bin/sh (e.g. CONFIG_SHELL=/bin/sh) or a packaged interpreter"
                    )
