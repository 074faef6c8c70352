"""Where an image's packages come from, and the prod and dev closures the minimizer gives.

A packages directory is read by the native index adapter; a signed repository
through the verifying client (every package checked against TUF metadata
before it is read). Dev is resolved as the prod closure pinned exactly plus the
dev extras, so the dev image always holds the prod image.
"""

from __future__ import annotations

from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.basefiles import BaseFile, repository_files
from pkgrepo.image.spec import ImageSpec
from pkgrepo.paths import default_packages
from pkgrepo.resolve.deps import Dep, parse_dep
from pkgrepo.resolve.minimize import Result, minimize
from pkgrepo.resolve.model import Index, Package
from pkgrepo.resolve.profiles import dev_extras, present
from pkgrepo.resolve.sources import PackageSource, open_source


class Excluding:
    """An index without the packages named by `!name` exclusions."""

    def __init__(self, index: Index, excluded: list[str]):
        self.index = index
        self.excluded = set(excluded)
        self.label = index.label

    def providers(self, name: str) -> list[Package]:
        return [p for p in self.index.providers(name) if p.name not in self.excluded]

    def names(self) -> list[str]:
        return sorted(set(self.index.names()) - self.excluded)


def spec_source(
    spec: ImageSpec,
    spec_dir: Path,
    packages: Path | None = None,
    repository: str | None = None,
    trust: Path | None = None,
) -> PackageSource:
    """The command line's --packages/--repo win over the spec's `source`, which wins over the default."""
    if packages is None and repository is None and spec.source is not None:
        if spec.source.packages is not None:
            packages = spec_dir / spec.source.packages
        else:
            repository = spec.source.repository
            trust = spec_dir / spec.source.trust if spec.source.trust else trust
    if repository is None:
        packages = packages or default_packages()
    return open_source(packages=packages, repository=repository, trust=trust)


def dev_repository_files(
    spec: ImageSpec, spec_dir: Path, source: PackageSource, trust: Path | None = None
) -> list[BaseFile]:
    """The dev image's /etc/pkgrepo from the spec's `dev.repository` ([] without one); its URL and
    trusted root default to those the image is built from."""
    wanted = spec.dev.repository
    if wanted is None:
        return []
    url = wanted.url or source.url
    if url is None:
        raise BadInput("dev.repository: give its `url` (the image is built from a packages directory)")
    if wanted.trust:
        path: Path | None = spec_dir / wanted.trust
    elif trust is not None:
        path = trust
    else:
        path = spec_dir / spec.source.trust if spec.source is not None and spec.source.trust else None
    if path is None:
        raise BadInput("dev.repository: give its `trust` (the repository's root.json)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the dev repository's trusted root: {e.strerror}") from None
    return repository_files(wanted.name, url, data)


def prod_closure(spec: ImageSpec, source: PackageSource) -> Result:
    return minimize(Excluding(source.index, spec.excluded), [parse_dep(r) for r in spec.roots])


def dev_closure(spec: ImageSpec, source: PackageSource, prod: Result) -> Result:
    extras = present(
        spec.dev.extras if spec.dev.extras is not None else dev_extras("native", []), source.index
    )
    pinned = [Dep(p.name, "=", p.version) for p in prod.packages]
    return minimize(source.index, [*pinned, *(parse_dep(e) for e in extras)])
