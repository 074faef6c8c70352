"""The image spec: one YAML file from which the prod and dev images are built.

Loaded with the recipe loader's node machinery, so every error names the file
and the line of the offending field (`pkgrepo schema image` prints the JSON
Schema). Cross-field checks (a `run-as` or `owner` naming an unknown account,
two accounts with one id) run after validation and point at their line too.

Every string of a spec except a file's `content` is `Text`: no control characters (no
newline, carriage return, tab, NUL, DEL, C1 or Unicode line separators), so no value can add
or bend a line of the Dockerfile, the image config or /etc/passwd; `work-dir` is held to
plain path characters. The Dockerfile renders each value through one quoting function
(`pkgrepo.image.dockerfile.word`) as a second defence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import FileKind
from pkgrepo.recipe.fields import ENV_NAMES, GROUP_NAME, IMAGE_NAME, USER_NAME
from pkgrepo.recipe.yamldoc import Lines, compose, read_yaml_file, validation_error
from pkgrepo.resolve.deps import parse_dep
from pkgrepo.safeio import control_character, shown

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOLOGIN = "/sbin/nologin"


PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._+@%,:=/-]*$")  # what `work-dir` may hold


def _text(value: str) -> str:
    bad = control_character(value)
    if bad is not None:
        raise ValueError(f"holds the control character {bad!r}; write it without one")
    return value


Text = Annotated[str, AfterValidator(_text)]


def _text_keys(value: dict[str, str]) -> dict[str, str]:
    """The keys of a mapping are checked as a whole, so an error names a bad key quoted and
    escaped (as a key's own check would put it, raw, into the error's location)."""
    for key in value:
        bad = control_character(key)
        if bad is not None:
            raise ValueError(
                f"the key {shown(key)} holds the control character {bad!r}; write it without one"
            )
    return value


TextKeys = AfterValidator(_text_keys)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _abs_path(value: str) -> str:
    _text(value)
    if not value.startswith("/") or any(p in ("..", ".") for p in value.split("/")):
        raise ValueError(f"{value!r} must be an absolute path without '.' or '..'")
    return "/" + value.strip("/") if value != "/" else "/"


class Source(_Model):
    """Where packages come from: a signed repository, or a local packages directory."""

    repository: Text | None = Field(None, description="URL of a signed pkgrepo repository.")
    trust: Text | None = Field(
        None, description="Trusted root metadata (root.json) for the repository, relative to the spec file."
    )
    packages: Text | None = Field(
        None, description="A directory of package files, relative to the spec file."
    )

    @field_validator("repository")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if (self.repository is None) == (self.packages is None):
            raise ValueError("give either `repository` (with `trust`) or `packages`")
        return self


class Group(_Model):
    name: Annotated[Text, GROUP_NAME]
    gid: int = Field(ge=0, lt=2**31)


class User(_Model):
    name: Annotated[Text, USER_NAME]
    uid: int = Field(ge=0, lt=2**31)
    gid: int | None = Field(None, ge=0, lt=2**31, description="Primary group id (default: the uid).")
    home: Text | None = Field(
        None,
        description="Home directory, created 0700 and owned by the user "
        "(default /home/NAME; /nonexistent is never created).",
    )
    shell: Text = NOLOGIN

    @field_validator("home")
    @classmethod
    def _home(cls, v: str | None) -> str | None:
        return None if v is None else _abs_path(v)

    @property
    def group(self) -> int:
        return self.uid if self.gid is None else self.gid

    @property
    def home_dir(self) -> str:
        return self.home or f"/home/{self.name}"


# Always present (distroless has the same three): root, nobody and the default prod user.
BASE_GROUPS = (Group(name="root", gid=0), Group(name="nonroot", gid=65532), Group(name="nobody", gid=65534))
BASE_USERS = (
    User(name="root", uid=0, home="/root"),
    User(name="nonroot", uid=65532, home="/home/nonroot"),
    User(name="nobody", uid=65534, home="/nonexistent"),
)


class Accounts(_Model):
    groups: list[Group] = Field(default_factory=list, description="Groups added to root, nonroot, nobody.")
    users: list[User] = Field(default_factory=list, description="Users added to root, nonroot, nobody.")
    run_as: Text = Field("nonroot", alias="run-as", description="The prod image's user: a name or a uid.")

    def all_groups(self) -> list[Group]:
        """The base groups, the spec's, and a group of its own for a user whose gid has none."""
        groups = [*BASE_GROUPS, *self.groups]
        for u in self.users:
            if not any(g.gid == u.group or g.name == u.name for g in groups):
                groups.append(Group(name=u.name, gid=u.group))
        return sorted(groups, key=lambda g: g.gid)

    def all_users(self) -> list[User]:
        return sorted([*BASE_USERS, *self.users], key=lambda u: u.uid)


def _mode(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        raise ValueError('write the mode as a quoted octal string, e.g. "0755"')
    if not isinstance(v, str) or not re.fullmatch(r"0?[0-7]{3,4}", v):
        raise ValueError('must be an octal string such as "0755"')
    return int(v, 8)


Mode = Annotated[int, Field(json_schema_extra={"type": "string", "pattern": "^0?[0-7]{3,4}$"})]


class PathEntry(_Model):
    """A directory, file or symlink that pkgrepo writes into the image (a base file)."""

    path: Text
    type: Literal["directory", "file", "symlink"]
    owner: Text = Field("0:0", description="USER[:GROUP], names of accounts or numeric ids.")
    mode: Mode | None = Field(None, description='Octal string; default "0755" for directories, "0644" files.')
    content: str | None = Field(None, description="A file's text.")
    target: Text | None = Field(None, description="A symlink's target.")

    _path = field_validator("path")(classmethod(lambda cls, v: _abs_path(v)))

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, v: Any) -> int | None:
        return None if v is None else _mode(v)

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.path == "/":
            raise ValueError("path `/` cannot be replaced")
        if (self.type == "symlink") != (self.target is not None):
            raise ValueError("`target` is for symlinks, and symlinks need one")
        if self.content is not None and self.type != "file":
            raise ValueError("`content` is for files only")
        return self

    @property
    def rel(self) -> str:
        return self.path.lstrip("/")

    @property
    def kind(self) -> FileKind:
        """The spec's `type` in the vocabulary of packages and trees (`directory` is `dir`)."""
        return "dir" if self.type == "directory" else self.type

    @property
    def file_mode(self) -> int:
        if self.mode is not None:
            return self.mode
        return {"directory": 0o755, "file": 0o644, "symlink": 0o777}[self.type]


class DevRepository(_Model):
    """The repository a dev image's package manager uses: written to /etc/pkgrepo (dev only)."""

    name: Annotated[Text, IMAGE_NAME] = Field("main", description="Its name in /etc/pkgrepo/repositories.")
    url: Text | None = Field(None, description="Default: the repository the image is built from.")
    trust: Text | None = Field(
        None,
        description="Its root metadata, relative to the spec file; default: the "
        "trusted root the image is built with.",
    )

    _url = field_validator("url")(classmethod(lambda cls, v: Source._url(v)))


class Dev(_Model):
    repository: DevRepository | None = Field(
        None,
        description="Written to /etc/pkgrepo/repositories and "
        "/etc/pkgrepo/trusted/NAME.root.json in the dev image only.",
    )
    extras: list[Text] | None = Field(
        None,
        description="Packages the dev image adds (default: the `native` list of repo-data/dev-extras.yaml).",
    )
    run_as: Text = Field(
        "root",
        alias="run-as",
        description="The dev image's user (default root, so its package manager can install).",
    )


class ImageSpec(_Model):
    """An image spec (`pkgrepo image build SPEC --profile prod|dev`)."""

    name: Annotated[Text, IMAGE_NAME] = Field(
        description="Image name: lower case, digits, and . _ - between them."
    )
    packages: list[Text] = Field(
        min_length=1,
        description="Roots (NAME, NAME=VERSION, NAME>=VERSION, so:LIB, cmd:NAME) and exclusions (!NAME).",
    )
    source: Source | None = Field(
        None, description="Default: the packages directory $PKGREPO_PACKAGES or ./packages."
    )
    accounts: Accounts = Field(default_factory=Accounts)
    environment: Annotated[dict[str, Text], ENV_NAMES] = Field(
        default_factory=dict,
        description="Added to PATH (and SSL_CERT_FILE when a CA bundle is installed); may override them.",
    )
    entrypoint: list[Text] = Field(default_factory=list, description="Exec form.")
    cmd: list[Text] = Field(default_factory=list, description="Exec form.")
    work_dir: Text = Field("/", alias="work-dir")
    paths: list[PathEntry] = Field(default_factory=list)
    annotations: Annotated[dict[str, Text], TextKeys] = Field(default_factory=dict)
    keep: list[Text] = Field(default_factory=list, description="Globs of files prod minimization keeps.")
    exclude: list[Text] = Field(default_factory=list, description="Globs prod also drops.")
    layers: int = Field(
        8, ge=2, le=100, description="Layer budget of the prod image (dev adds up to as many)."
    )
    dev: Dev = Field(default_factory=Dev)

    @field_validator("packages")
    @classmethod
    def _packages(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                parse_dep(item.removeprefix("!"))
            except BadInput as e:
                raise ValueError(str(e)) from None
            if item.startswith("!") and any(c in item for c in "<>="):
                raise ValueError(f"{item!r}: an exclusion is a bare package name")
        return v

    @field_validator("work_dir")
    @classmethod
    def _work_dir(cls, v: str) -> str:
        path = _abs_path(v)
        if not PLAIN_PATH.match(path):
            raise ValueError(
                f"{v!r}: the Dockerfile's WORKDIR takes letters, digits and . _ + @ % , : = / - only"
            )
        return path

    @property
    def roots(self) -> list[str]:
        return [p for p in self.packages if not p.startswith("!")]

    @property
    def excluded(self) -> list[str]:
        return [p[1:] for p in self.packages if p.startswith("!")]


def _check(spec: ImageSpec, lines: Lines, where: str) -> None:
    def fail(loc: tuple[Any, ...], msg: str) -> BadInput:
        return BadInput(f"{where}:{lines.get(loc, 1)}: {'.'.join(map(str, loc))}: {msg}")

    acc = spec.accounts
    for kind, items, key in (("groups", acc.all_groups(), "gid"), ("users", acc.all_users(), "uid")):
        names: set[str] = set()
        ids: set[int] = set()
        for item in items:
            num = getattr(item, key)
            if item.name in names or num in ids:
                i = next((i for i, x in enumerate(getattr(acc, kind)) if x is item), 0)
                raise fail(
                    ("accounts", kind, i),
                    f"{item.name} ({key} {num}) clashes with another entry; "
                    "root 0, nonroot 65532 and nobody 65534 are always present",
                )
            names.add(item.name)
            ids.add(num)
    for loc, who in ((("accounts", "run-as"), acc.run_as), (("dev", "run-as"), spec.dev.run_as)):
        if resolve_user(spec, who) is None:
            known = ", ".join(u.name for u in acc.all_users())
            raise fail(loc, f"unknown user {who!r} (known: {known}); add it under accounts.users")
    for i, entry in enumerate(spec.paths):
        if resolve_owner(spec, entry.owner) is None:
            raise fail(
                ("paths", i, "owner"), f"unknown owner {entry.owner!r}; name an account or use UID:GID"
            )
    seen: set[str] = set()
    for i, entry in enumerate(spec.paths):
        if entry.path in seen:
            raise fail(("paths", i, "path"), f"{entry.path} is listed twice")
        seen.add(entry.path)


def resolve_user(spec: ImageSpec, who: str) -> User | None:
    users = spec.accounts.all_users()
    if who.isdigit():
        return next((u for u in users if u.uid == int(who)), None)
    return next((u for u in users if u.name == who), None)


def resolve_owner(spec: ImageSpec, owner: str) -> tuple[int, int] | None:
    """`USER[:GROUP]` (names or numbers) -> (uid, gid); None when a name is unknown."""
    user, _, group = owner.partition(":")
    if user.isdigit():
        uid, default_gid = int(user), int(user)
    else:
        found = resolve_user(spec, user)
        if found is None:
            return None
        uid, default_gid = found.uid, found.group
    if not group:
        return uid, default_gid
    if group.isdigit():
        return uid, int(group)
    g = next((g for g in spec.accounts.all_groups() if g.name == group), None)
    return None if g is None else (uid, g.gid)


def parse_spec(text: str, where: str) -> ImageSpec:
    data, lines = compose(text, where, "an image spec is a YAML mapping with `name` and `packages`")
    try:
        spec = ImageSpec.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, lines, where, "image") from None
    _check(spec, lines, where)
    return spec


def load_spec(path: Path) -> ImageSpec:
    return parse_spec(read_yaml_file(path, "the image spec"), shown(path))


def schema() -> dict[str, Any]:
    return ImageSpec.model_json_schema(by_alias=True)
