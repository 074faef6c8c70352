"""The site rendered ahead: on another core, while the publish writes and signs.

A publish writes and syncs every package file, then every evidence file and the index, then
signs and syncs every hash bin it changed, targets, snapshot and timestamp. The catalogue after
it is a function of the view it is about to sign, so `pkgrepo publish` renders it meanwhile on
the machine's other core: once the package files are written and every other target is read
(the publish's `written` hook), a child process forks, reads the hash bins as they are on disk
(`_listed`, unchecked), adds the targets the publish is signing (`Preview`: the evidence and
the index it has still to write are read from its memory), and gathers, renders and writes
the site into a temporary directory of `REPO/.sites`.

Nothing the child read is trusted for what it shows. After the commit, `generate` verifies the
signed metadata as always and takes the child's site only when the view it verified (every
target with its signed length and hashes, the timestamp's version: the index is a target) is
the one the child rendered from: then the child ran the same code on the same view and the
same target bytes (read through that view, each checked against its signed sha256), so its
site is the bytes `generate` would render (the tests and the benchmark compare it with a site
generated alone). Otherwise (a view that differs, a child that failed or was killed) the
child's directory is left for `_install` to remove, and the site is rendered in the usual way.
On one core the child only competes with the publish; the site is the same either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import pickle
import signal
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from tuf.api.metadata import TargetFile

from pkgrepo.attest.advisories import Advisory
from pkgrepo.attest.vex import Statement
from pkgrepo.repo.index import INDEX, parse_index
from pkgrepo.repo.repository import Preview
from pkgrepo.safeio import untrusted_json
from pkgrepo.web.site import SITES, Rendered, render_site, written
from pkgrepo.web.verified import Verified, read_metadata

PR_SET_PDEATHSIG = 1  # prctl(2)


def view_digest(verified: Verified) -> str:
    """The digest of everything a site is rendered from, besides the bytes of the targets
    (each named by its hashes here) and the advisories, VEX and caches of the caller."""
    h = hashlib.sha256(f"{verified.timestamp_version}\0".encode())
    for target, info in sorted(verified.targets.items()):
        h.update(f"{target}\0{json.dumps(info.to_dict(), sort_keys=True)}\0".encode())
    return h.hexdigest()


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when its parent dies (a publish killed with -9 leaves
    no renderer behind holding its lock); exit now if it is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != parent:
        os._exit(1)


@dataclass(frozen=True)
class _Previewed(Verified):
    """The view the child renders from: targets the publish has yet to write are read from
    its memory, checked against their `TargetFile` as `Verified.read` checks what it reads."""

    contents: dict[str, bytes] = field(default_factory=dict)

    def read(self, target: str) -> bytes:
        data = self.contents.get(target)
        if data is None:
            return super().read(target)
        self.targets[target].verify_length_and_hashes(data)
        return data


def _listed(repo: Path) -> dict[str, TargetFile]:
    """Every target the hash bins on disk list, as they are now (before the commit or after),
    read without checking a signature: nothing here is shown unless the view the parent
    verifies is this one with the publish's targets added. Hostile files are refused as
    `verify` refuses them (never followed, never waited on, bounded), which ends the child."""
    meta = repo / "metadata"

    def signed(name: str) -> dict:
        return untrusted_json(read_metadata(meta / name))["signed"]

    snapshot = signed(f"{signed('timestamp.json')['meta']['snapshot.json']['version']}.snapshot.json")
    listed = {}
    for name, info in snapshot["meta"].items():
        if name != "targets.json":
            listed.update(signed(f"{info['version']}.{name}")["targets"])
    return {t: TargetFile.from_dict(dict(info), t) for t, info in listed.items()}


class Ahead:
    """The site of a repository rendered in a child process while a publish signs.

    Use as a context manager around the publish and the generation after it, so that the
    child never outlives them: `repo.publish(..., written=ahead.start)`, then
    `generate(..., ahead=ahead)`."""

    def __init__(
        self, repo: Path, advisories: list[Advisory], statements: list[Statement], cache: Path | None = None
    ):
        from pkgrepo.paths import default_cache

        self.repo, self.advisories, self.statements = repo, advisories, statements
        self.cache = cache or default_cache() / "web"  # generate's default
        self._child: tuple[int, int] | None = None  # (pid, the read end of its pipe)

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def start(self, preview: Preview) -> None:
        """Fork the child that renders the site of `preview` (the publish's `written` hook)."""
        self._stop()
        parent = os.getpid()
        try:
            read, write = os.pipe()
        except OSError:
            return  # no child: the site is rendered after the publish
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: never returns, never raises into the publish's code
            status = 1
            try:
                _die_with(parent)
                os.close(read)
                data = pickle.dumps(self._render(preview), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self._child = (pid, read)

    def _render(self, preview: Preview) -> tuple[str, Rendered]:
        """In the child: the site of the repository on disk with the preview's targets added."""
        targets = {**_listed(self.repo), **preview.targets}
        view = _Previewed(self.repo, targets, [], preview.timestamp_version, preview.contents)
        view = replace(view, entries=parse_index(view.read(INDEX)))
        rendered = render_site(self.repo, view, self.advisories, self.statements, self.cache, preview.heads)
        rendered.tmp = written(self.repo, rendered.files, rendered.links)
        rendered.files = {}  # written: not sent back
        return view_digest(view), rendered

    def take(self, verified: Verified) -> Rendered | None:
        """The child's site when it rendered `verified`'s view and is done; None otherwise."""
        if self._child is None:
            return None
        pid, read = self._child
        self._child = None
        with os.fdopen(read, "rb") as f:
            data = f.read()  # to its end: the child has written all or died
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            return None
        try:
            digest, rendered = pickle.loads(data)  # our own child's, over our own pipe
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):
            return None
        if digest != view_digest(verified) or not self._kept(rendered.tmp):
            return None
        return rendered

    def _kept(self, tmp: str | None) -> bool:
        """Is the child's directory still in `REPO/.sites`? Another generation that took the
        lock between the publish and this one removed it (as every directory not served) when
        it served another site (other advisories): then the site is rendered again. Asked under
        the lock, so no generation removes it after."""
        if not tmp:
            return False
        with contextlib.suppress(OSError):
            return stat.S_ISDIR(os.lstat(self.repo / SITES / tmp).st_mode)
        return False

    def _stop(self) -> None:
        """Stop and reap a child not taken (its directory is removed by the next install)."""
        if self._child is None:
            return
        pid, read = self._child
        self._child = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
