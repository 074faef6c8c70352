"""Fetch pinned sources into a content-addressed cache.

A source is named by its upstream URL and its sha256. The cache is keyed by
the sha256 alone, so a file is fetched once whatever URL named it. When the
upstream URL cannot be reached, Debian's source archive is tried: for many
projects Debian ships the upstream tarball byte for byte, and the sha256 check
proves it. The `deb-src` entries are derived at run time from this machine's
own apt sources into a private apt state directory; the system's apt
configuration is never changed.

Only three origins exist: an `https://` or `http://` URL (the recipe model
refuses any other scheme), Debian's source archive, and a local mirror
directory the operator configures (`PKGREPO_MIRROR`), in which a file is
looked up by its sha256 alone, so a recipe can name no other path on the host.
A mismatching download's digest is never printed: the message says only that
it differs.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pkgrepo.digest import CHUNK, sha256_file
from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.limits import env_bytes, env_seconds
from pkgrepo.paths import default_cache
from pkgrepo.recipe.model import Source


def source_filename(src: Source) -> str:
    if src.filename:
        return src.filename
    if src.url:
        return src.url.rstrip("/").rsplit("/", 1)[-1]
    return f"{src.debian.package}-{src.sha256[:12]}" if src.debian else src.sha256


SOURCE_TIMEOUT = 900.0  # seconds for one source download, however the bytes trickle
SOURCE_MAX_BYTES = 4 << 30  # no upstream tarball is larger; an endless server is cut off here


class SourceCache:
    """`<root>/sha256/<digest>`: each file stored under its own digest."""

    def __init__(
        self,
        root: Path | None = None,
        log: Callable[[str], None] = lambda _m: None,
        mirror: Path | None = None,
    ):
        self.root = Path(root) if root else default_cache()
        self.log = log
        env_mirror = os.environ.get("PKGREPO_MIRROR")
        self.mirror = mirror or (Path(env_mirror) if env_mirror else None)
        self._debian: DebianSourceArchive | None = None
        self._lock = threading.Lock()  # concurrent builds share one cache (and one apt state)

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / digest

    def fetch(self, src: Source, where: str) -> Path:
        """Return the cached file for `src`, fetching it if needed; never an unverified file."""
        with self._lock:
            return self._fetch(src, where)

    def _fetch(self, src: Source, where: str) -> Path:
        target = self.path(src.sha256)
        if target.exists():
            if sha256_file(target) == src.sha256:
                return target
            target.unlink()  # a corrupt cache entry is refetched, not trusted
        target.parent.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        if self.mirror is not None:
            if (found := self._from_mirror(src.sha256)) is not None:
                self._store(found, src, where, origin=f"mirror {self.mirror}")
                return target
            errors.append(f"mirror {self.mirror} has no file named by that sha256")
        if src.url:
            try:
                self._store(self._download(src.url), src, where, origin=src.url)
                return target
            except _Unreachable as e:
                errors.append(f"{src.url}: {e}")
        if src.debian:
            if self._debian is None:
                self._debian = DebianSourceArchive(self.root / "debian-apt", self.log)
            found = self._debian.find(src.debian.package, src.debian.version, src.sha256)
            if found:
                self._store(found, src, where, origin=f"Debian source {src.debian.package}")
                return target
            errors.append(
                f"Debian source {src.debian.package}"
                f"{'=' + src.debian.version if src.debian.version else ''} has no file with that sha256"
            )
        raise PkgrepoError(
            f"{where}: source {source_filename(src)} (sha256 {src.sha256[:12]}…) could not be fetched: "
            + "; ".join(errors)
            + "; put the file in the cache with `pkgrepo fetch --add FILE` or fix the recipe"
        )

    def add(self, path: Path) -> str:
        """Put a local file into the cache; return its digest."""
        digest = sha256_file(path)
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.tmp{os.getpid()}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        return digest

    def _from_mirror(self, digest: str) -> Path | None:
        """A copy of `MIRROR/DIGEST` (a regular file, not a link) in the cache directory."""
        assert self.mirror is not None
        try:
            fd = os.open(self.mirror / digest, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            out, name = tempfile.mkstemp(dir=self.root / "sha256", prefix=".mirror")
            with os.fdopen(out, "wb") as dst:
                shutil.copyfileobj(f, dst, CHUNK)
        return Path(name)

    def _store(self, tmp: Path, src: Source, where: str, origin: str) -> None:
        if sha256_file(tmp) != src.sha256:
            tmp.unlink(missing_ok=True)
            raise BadInput(
                f"{where}: source {source_filename(src)} from {origin} does not have the sha256 "
                f"the recipe pins ({src.sha256}); check the URL or update the sha256"
            )
        os.replace(tmp, self.path(src.sha256))
        self.log(f"fetched {source_filename(src)} from {origin}")

    def _download(self, url: str) -> Path:
        if not url.startswith(("https://", "http://")):  # the recipe model refuses it first
            raise BadInput(f"{url}: only https:// and http:// URLs are fetched")
        limit = env_seconds("PKGREPO_SOURCE_TIMEOUT", SOURCE_TIMEOUT)
        cap = env_bytes("PKGREPO_SOURCE_MAX_BYTES", SOURCE_MAX_BYTES)
        deadline = time.monotonic() + limit
        fd, name = tempfile.mkstemp(dir=self.root / "sha256", prefix=".dl")
        done = False
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=15) as resp:
                got = 0
                while chunk := resp.read1(CHUNK):
                    got += len(chunk)
                    if got > cap:
                        raise _Unreachable(f"larger than {cap} bytes (PKGREPO_SOURCE_MAX_BYTES)")
                    if time.monotonic() > deadline:
                        raise _Unreachable(f"not complete within {limit:g}s (PKGREPO_SOURCE_TIMEOUT)")
                    out.write(chunk)
            done = True
        except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
            raise _Unreachable(getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)) from None
        finally:
            if not done:
                os.unlink(name)
        return Path(name)


class _Unreachable(Exception):
    pass


# The suites after the host's own whose sources are offered too: a recipe may take a newer
# upstream release (or a security fix) from them; the sha256 pin is what makes the file trusted.
NEWER_SUITES = {"bookworm": ("trixie", "sid"), "trixie": ("forky", "sid")}


def with_newer(suites: list[str]) -> list[str]:
    """`suites` and, for each, the same pocket of the newer releases (`bookworm-security` gives
    `trixie-security`; unstable has only its main pocket)."""
    out = list(suites)
    for suite in suites:
        codename, dash, pocket = suite.partition("-")
        for newer in NEWER_SUITES.get(codename, ()):
            if newer == "sid" and dash:
                continue
            name = f"{newer}{dash}{pocket}"
            if name not in out:
                out.append(name)
    return out


class DebianSourceArchive:
    """`apt-get source --download-only` against deb-src entries derived from the host's apt sources."""

    def __init__(self, state: Path, log: Callable[[str], None], sources: Path | None = None):
        self.state = state
        self.log = log
        self.sources = sources  # a sources.list to use instead of the host's (a local mirror)
        self._updated = False

    def _options(self) -> list[str]:
        s = self.state
        return [
            "-o",
            "Dir::Etc::SourceList=/dev/null",
            "-o",
            f"Dir::Etc::SourceParts={s / 'sources.list.d'}",
            "-o",
            f"Dir::State::Lists={s / 'lists'}",
            "-o",
            f"Dir::Cache={s / 'cache'}",
            "-o",
            "Dir::State::status=/dev/null",
            "-o",
            "APT::Sandbox::User=root",
        ]

    def _write_sources(self) -> None:
        parts = self.state / "sources.list.d"
        parts.mkdir(parents=True, exist_ok=True)
        (self.state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        if self.sources is not None:
            try:
                text = self.sources.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise BadInput(f"{self.sources}: cannot read the sources list ({e})") from None
            for old in parts.iterdir():
                old.unlink()
            (parts / "given.list").write_text(text)
            return
        etc = Path("/etc/apt")
        deb822 = sorted((etc / "sources.list.d").glob("*.sources"))
        for f in deb822:
            text = re.sub(r"(?m)^Types:.*$", "Types: deb-src", f.read_text())
            text = re.sub(
                r"(?m)^(Suites:)(.*)$", lambda m: m[1] + " " + " ".join(with_newer(m[2].split())), text
            )
            (parts / f.name).write_text(text)
        legacy = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
        lines = []
        for f in legacy:
            if f.exists():
                for line in f.read_text().splitlines():
                    if m := re.match(r"^\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)(.*)$", line):
                        opts, uri, suite, rest = m[1] or "", m[2], m[3], m[4]
                        lines += [f"deb-src {opts}{uri} {s}{rest}" for s in with_newer([suite])]
        if lines:
            (parts / "derived.list").write_text("\n".join(lines) + "\n")

    def _update(self) -> None:
        if self._updated:
            return
        self._write_sources()
        self.log("updating Debian source indexes")
        run = subprocess.run(["apt-get", "-q", *self._options(), "update"], capture_output=True, text=True)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["?"]
            raise PkgrepoError(f"apt-get update for deb-src failed: {tail[0]}")
        self._updated = True

    def versions(self, package: str) -> list[tuple[str, str]]:
        """(version, suite) of every source version of `package` the archive offers (apt-cache madison)."""
        self._update()
        run = subprocess.run(
            ["apt-cache", *self._options(), "madison", package], capture_output=True, text=True
        )
        out = []
        for line in run.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[0] == package and parts[2].endswith("Sources"):
                suite = parts[2].split()[-2].split("/", 1)[0]
                out.append((parts[1], suite))
        return sorted(set(out))

    def find(self, package: str, version: str | None, digest: str) -> Path | None:
        if shutil.which("apt-get") is None:
            return None
        self._update()
        spec = f"{package}={version}" if version else package
        work = Path(tempfile.mkdtemp(prefix="debsrc", dir=self.state))
        try:
            run = subprocess.run(
                ["apt-get", "-q", *self._options(), "source", "--download-only", spec],
                cwd=work,
                capture_output=True,
                text=True,
            )
            # A mirror may lack some of a source package's files (often the .dsc or the
            # .debian.tar.xz of a newer upload) yet hold its orig tarball: whatever did arrive is
            # looked at, since the pinned sha256, not apt's verdict, is what trusts the file.
            for f in sorted(work.iterdir()):
                if f.is_file() and sha256_file(f) == digest:
                    out = self.state / f".found-{digest}"
                    os.replace(f, out)
                    return out
            if run.returncode != 0:
                self.log(f"apt-get source {spec} failed: {run.stderr.strip()[-200:]}")
            return None
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
