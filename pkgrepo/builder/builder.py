"""Build one recipe: work out its inputs and cache key, reuse an earlier build of the same key (kept
here or in a shared build cache) or build it from source.

A build from source runs in the sandbox (`pipeline`) and is packaged (`pack`); its packages are
written to a staging directory and moved into the output directory only when every one of them was
written, so a failed build leaves no partial package. The cache key is the digest of every input
that can change the output: the recipe, its patches, the exact build-dependency packages and the
host toolchain's versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pkgrepo import hosttools
from pkgrepo.attest.dsse import public_key_bytes
from pkgrepo.attest.evidence import PUBLIC_KEY
from pkgrepo.buildcode import code_digest
from pkgrepo.builder.cache import BuildCache, DirectoryCache, check_hit
from pkgrepo.builder.context import BuildContext, Report, Variation
from pkgrepo.builder.outdir import PackagesDir
from pkgrepo.builder.pack import make_packages
from pkgrepo.builder.pipeline import run_pipeline
from pkgrepo.builder.records import BuildRecord, read_record, write_record
from pkgrepo.builder.staged import open_regular
from pkgrepo.errors import BadInput, BuildFailed
from pkgrepo.package.archive import read_info
from pkgrepo.package.meta import FORMAT, PACKAGE_SUFFIX, canonical_json
from pkgrepo.recipe.load import RecipeFile
from pkgrepo.recipe.model import Recipe
from pkgrepo.resolve.model import Package
from pkgrepo.source import SourceCache

LOGS = "logs"


@dataclass
class BuildResult:
    name: str
    packages: list[Path]
    cached: bool
    seconds: float
    log: Path


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

    def cached(self, name: str, key: str) -> list[Path] | None:
        record = read_record(self.out, name)
        if record is None:
            return None
        files = [self.out / f for f in record.packages]
        if record.key == key and all(f.exists() for f in files):
            return files
        return None

    def tested(self, name: str) -> bool:
        record = read_record(self.out, name)
        return record is not None and record.tested

    def mark_tested(self, name: str) -> None:
        record = read_record(self.out, name)
        if record is None:
            raise BuildFailed(f"{name}: no build record in {self.out} to mark tested; build it again")
        write_record(self.out, name, dataclasses.replace(record, tested=True))

    def _inputs(self, file: RecipeFile) -> tuple[list[Package], dict[str, bytes], str]:
        """The build dependencies, the patches and the cache key of everything that can change the output."""
        path, recipe = file.path, file.recipe
        deps = self._build_deps(recipe, str(path))
        patches = self._patches(path, recipe)
        digests = {p.name: self.index.digest(Path(p.location)) for p in deps}
        return (
            deps,
            patches,
            cache_key(recipe, {p: hashlib.sha256(b).hexdigest() for p, b in patches.items()}, digests),
        )

    def lookup(self, file: RecipeFile) -> BuildResult | None:
        """The packages of an earlier build from the same inputs: still here, or in a shared build cache."""
        start = time.monotonic()
        _deps, _patches, key = self._inputs(file)
        hit = self.cached(file.name, key) or self._from_caches(file.name, key)
        if hit is None:
            return None
        return BuildResult(file.name, hit, True, time.monotonic() - start, self.log_path(file.name))

    def _from_caches(self, name: str, key: str) -> list[Path] | None:
        """A build with this key from a shared cache, checked and moved into the packages directory."""
        for cache in self.caches:
            self.out.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=self.out))
            try:
                files = cache.get(name, key, staging)
                if not files:
                    continue
                packages = [(f, read_info(f)) for f in files if f.name.endswith(PACKAGE_SUFFIX)]
                for f, info in packages:
                    if info.origin != name or f.name != info.filename:
                        raise BadInput(
                            f"{cache.label}: {f.name} is not a package of {name}; "
                            "the build cache is wrong, do not use it"
                        )
                # signed by a key trusted for this cache, as built from these inputs (the key)
                signer = check_hit(cache, name, key, files)
                for f in files:
                    if f.name != PUBLIC_KEY and not f.name.endswith(PACKAGE_SUFFIX):
                        os.replace(f, self.out / f.name)  # SBOMs and provenance first, then the packages
                if not (self.out / PUBLIC_KEY).exists():  # the key that verified, never the cache's file
                    (self.out / PUBLIC_KEY).write_bytes(public_key_bytes(signer))
                final = [self.index.move_in(f, info) for f, info in packages]
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            write_record(self.out, name, BuildRecord(key, [f.name for f in final]))
            log = self.log_path(name)  # a build's log is always there; its tests append to it
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"taken from the build cache {cache.label} (key {key})\n")
            self.report(f"{name}: taken from the build cache {cache.label}")
            return final
        return None

    def build(
        self,
        file: RecipeFile,
        variation: Variation | None = None,
        out: Path | None = None,
        force: bool = False,
    ) -> BuildResult:
        """Build `file`'s recipe, taking build dependencies from `self.out`.

        `out` redirects the packages (the reproducibility check builds into scratch directories).
        """
        recipe = file.recipe
        dest_dir = Path(out or self.out)
        start = time.monotonic()
        deps, patches, key = self._inputs(file)
        log = (dest_dir / LOGS / f"{recipe.name}.log") if out else self.log_path(recipe.name)
        if (
            out is None
            and not force
            and (hit := self.cached(recipe.name, key) or self._from_caches(recipe.name, key))
        ):
            return BuildResult(recipe.name, hit, True, time.monotonic() - start, log)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        sources = [self.cache.fetch(s, str(file.path)) for s in recipe.sources]  # verified before unpacking
        ctx = BuildContext(
            file,
            variation or Variation(),
            deps,
            sources,
            patches,
            key,
            log,
            dest_dir,
            self.index,
            self.report,
        )
        work = Path(tempfile.mkdtemp(prefix=f"pkgrepo-{recipe.name}-"))
        try:
            staged, sde = run_pipeline(ctx, work)
            packages = make_packages(ctx, staged, sde)
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
