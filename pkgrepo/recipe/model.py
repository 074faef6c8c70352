"""Pydantic models of a recipe: the declarative description of one source build.

Field names follow melange where a melange user would look for them
(`package`, `environment`, `pipeline`, `subpackages`, `test`), written in
kebab-case in YAML. Unknown fields are errors, so a typo never silently
changes a build.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from packageurl import PackageURL
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import NAME_RE, VERSION_RE
from pkgrepo.recipe.fields import Environment
from pkgrepo.recipe.steps import STEPS
from pkgrepo.resolve.deps import parse_dep

SHA256_RE = r"^[0-9a-f]{64}$"
VULN_ID_RE = r"^[A-Z][A-Z0-9]*-[A-Za-z0-9._:-]+$"
# The names of the built-in steps, from the registry: a Literal, so the JSON Schema lists them.
StepName = Literal[tuple(STEPS)]  # type: ignore[valid-type]
# Seconds a step may run when neither the step nor the package sets `timeout`.
DEFAULT_TIMEOUT = 3600
Timeout = Annotated[
    int, Field(ge=1, le=7 * 24 * 3600, description="Seconds a step may run before it is killed.")
]


def plain_relative(v: str, what: str, single: bool = False) -> str:
    """A path the host joins onto a build directory: relative, no `..`, no empty or `.` parts.

    Checked when the recipe loads, so nothing runs with a path that could leave the tree.
    """
    parts = v.split("/")
    if not v or v.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in v:
        raise ValueError(
            f"{what} must be a relative path with no leading /, no `..` and no empty part: {v!r}"
        )
    if single and len(parts) > 1:
        raise ValueError(f"{what} must be a single file name without `/`: {v!r}")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_deps(values: list[str]) -> list[str]:
    for v in values:
        try:
            parse_dep(v)
        except BadInput as e:
            raise ValueError(str(e)) from None
    return values


class Dependencies(Strict):
    runtime: list[str] = Field(default_factory=list, description="Explicit runtime dependencies.")
    provides: list[str] = Field(default_factory=list, description="Extra provided names.")

    _v_runtime = field_validator("runtime", "provides")(_check_deps)


PURL_RE = r"^pkg:[a-z][a-z0-9.+-]*/[^@?#\s]+$"
CPE_RE = r"^cpe:2\.3:[aho]:[^:\s]+:[^:\s]+$"


class Upstream(Strict):
    """Who made the software a recipe builds: advisories are matched by this identity and the
    upstream version, never by our package name."""

    purl: Annotated[str, Field(pattern=PURL_RE)] = Field(
        description="Package URL of the upstream project, without a version (pkg:github/madler/zlib)."
    )
    cpe: Annotated[str | None, Field(pattern=CPE_RE)] = Field(
        None, description="CPE 2.3 vendor and product, without a version (cpe:2.3:a:zlib:zlib)."
    )
    version: Annotated[str | None, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9.+~_-]*$")] = Field(
        None, description="The upstream release, when it is not package.version."
    )


class Package(Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    version: Annotated[str, Field(pattern=VERSION_RE)]
    epoch: Annotated[int, Field(ge=0)] = 0
    release: Annotated[int, Field(ge=0)] = 1
    description: Annotated[str, Field(min_length=1)]
    license: Annotated[str, Field(min_length=1, description="SPDX license expression.")]
    homepage: str | None = None
    upstream: Upstream | None = Field(
        None, description="The upstream project's identity (purl, CPE): what advisories name."
    )
    fixes: list[Annotated[str, Field(pattern=VULN_ID_RE)]] = Field(
        default_factory=list,
        description="Vulnerability ids this release fixes without a patch (Alpine's secfixes); "
        "patch fixes go on the patch.",
    )
    dependencies: Dependencies = Field(default_factory=Dependencies)
    source_date_epoch: Annotated[int | None, Field(alias="source-date-epoch", ge=0)] = None
    timeout: Timeout = Field(DEFAULT_TIMEOUT, description="Default time limit of every step, in seconds.")


class DebianSource(Strict):
    """Where Debian's source archive holds the same bytes (an offline mirror)."""

    package: Annotated[str, Field(pattern=NAME_RE)]
    version: str | None = None


class Source(Strict):
    url: str | None = Field(None, description="Upstream URL of the file.")
    debian: DebianSource | None = Field(
        None, description="Debian source package that ships a byte-identical file."
    )
    sha256: Annotated[str, Field(pattern=SHA256_RE)]
    filename: str | None = None
    strip_components: Annotated[int, Field(alias="strip-components", ge=0)] = 1
    destination: str = Field(".", description="Directory under the build tree to unpack into.")
    extract: bool = True

    @model_validator(mode="after")
    def _origin(self) -> Source:
        # `filename` alone: a local file with no upstream (pkgrepo's own source,
        # scripts/pkgrepo-source.py), found only in the cache or PKGREPO_MIRROR
        if not self.url and not self.debian and not self.filename:
            raise ValueError("a source needs `url` or `debian` (or both), or `filename` for a local file")
        return self

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(
                f"only https:// and http:// URLs are fetched, not {v[:40]!r}; "
                "use `debian:` or a local mirror (PKGREPO_MIRROR) for other files"
            )
        return v

    @field_validator("filename")
    @classmethod
    def _filename(cls, v: str | None) -> str | None:
        return None if v is None else plain_relative(v, "filename", single=True)

    @field_validator("destination")
    @classmethod
    def _relative(cls, v: str) -> str:
        return v if v == "." else plain_relative(v, "destination")


class Patch(Strict):
    file: str = Field(description="Patch file, relative to the recipe's directory.")
    strip: Annotated[int, Field(ge=0)] = 1
    fixes: list[Annotated[str, Field(pattern=VULN_ID_RE)]] = Field(
        default_factory=list,
        description="Vulnerability ids (CVE-..., GHSA-..., OSV ids) this patch fixes; the patch file "
        "says where it comes from in its DEP-3 header (Origin:).",
    )

    @field_validator("file")
    @classmethod
    def _relative(cls, v: str) -> str:
        return plain_relative(v, "patch file")


class Step(Strict):
    name: str | None = None
    uses: StepName | None = None
    runs: str | None = None
    with_: dict[str, str] = Field(default_factory=dict, alias="with")
    working_directory: str | None = Field(None, alias="working-directory")
    timeout: Timeout | None = Field(None, description="This step's time limit; default package.timeout.")

    @field_validator("working_directory")
    @classmethod
    def _relative(cls, v: str | None) -> str | None:
        return None if v is None else plain_relative(v, "working-directory")

    @model_validator(mode="after")
    def _one_of(self) -> Step:
        if (self.uses is None) == (self.runs is None):
            raise ValueError("a step needs exactly one of `uses` or `runs`")
        if self.runs is not None and self.with_:
            raise ValueError("`with` only applies to `uses` steps")
        if self.uses is not None:
            inputs = STEPS[self.uses].inputs
            unknown = sorted(set(self.with_) - set(inputs))
            if unknown:
                allowed = ", ".join(sorted(inputs)) or "nothing"
                raise ValueError(f"{self.uses} does not take {', '.join(unknown)} (it takes {allowed})")
        return self


class Subpackage(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+._${}-]*$")]
    description: str | None = None
    files: list[str] = Field(min_length=1, description="Globs, relative to the install root.")
    dependencies: Dependencies = Field(default_factory=Dependencies)


class Split(Strict):
    dev: bool = True
    doc: bool = True
    dbg: bool = False


class Test(Strict):
    environment: list[str] = Field(
        default_factory=list, description="Extra packages installed beside the package under test."
    )
    pipeline: list[Step] = Field(min_length=1)

    @field_validator("pipeline")
    @classmethod
    def _runs_only(cls, v: list[Step]) -> list[Step]:
        for step in v:
            if step.runs is None:
                raise ValueError("test steps are `runs:` scripts")
        return v


class Recipe(Strict):
    package: Package
    sources: list[Source] = Field(min_length=1)
    patches: list[Patch] = Field(default_factory=list)
    build_depends: list[str] = Field(default_factory=list, alias="build-depends")
    vars: dict[str, str] = Field(default_factory=dict)
    environment: Environment = Field(default_factory=dict)
    pipeline: list[Step] = Field(min_length=1)
    subpackages: list[Subpackage] = Field(default_factory=list)
    split: Split = Field(default_factory=Split)
    test: Test | None = None

    _v_bdeps = field_validator("build_depends")(_check_deps)

    @model_validator(mode="after")
    def _epoch_source(self) -> Recipe:
        if self.package.source_date_epoch is None and not any(s.extract for s in self.sources):
            raise ValueError(
                "no source is extracted, so nothing dates the build; set package.source-date-epoch"
            )
        return self

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def upstream_version(self) -> str:
        """The upstream release this recipe builds (advisories' ranges are in these versions)."""
        u = self.package.upstream
        return (u.version if u and u.version else None) or self.package.version

    @property
    def upstream_purl(self) -> str | None:
        """The upstream project's purl at the upstream version (pkg:github/madler/zlib@1.2.13)."""
        u = self.package.upstream
        if u is None:
            return None
        return PackageURL.from_string(u.purl)._replace(version=self.upstream_version).to_string()

    @property
    def upstream_cpe(self) -> str | None:
        """The CPE 2.3 formatted name at the upstream version (cpe:2.3:a:zlib:zlib:1.2.13:*:...)."""
        u = self.package.upstream
        if u is None or u.cpe is None:
            return None
        version = re.sub(r"([^A-Za-z0-9._-])", r"\\\1", self.upstream_version)
        return f"{u.cpe}:{version}" + ":*" * 7

    @property
    def fixes(self) -> list[str]:
        """Every vulnerability id the recipe says it fixes: by its release and by its patches."""
        return sorted({*self.package.fixes, *(i for p in self.patches for i in p.fixes)})

    @property
    def patch_fixes(self) -> dict[str, list[str]]:
        """Each patch file that fixes something, with the ids it fixes."""
        return {p.file: sorted(p.fixes) for p in self.patches if p.fixes}

    @property
    def full_version(self) -> str:
        """`[epoch:]version-rrelease`, the string dependencies compare against."""
        p = self.package
        epoch = f"{p.epoch}:" if p.epoch else ""
        return f"{epoch}{p.version}-r{p.release}"
