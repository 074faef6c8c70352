"""The verifying client: python-tuf's ngclient between the network and the root filesystem.

Metadata is refreshed with `tuf.ngclient.Updater` (root chain, timestamp,
snapshot, targets, hash bins: expiry, rollback, signatures, lengths, versions),
and every target — the index and each package — is downloaded through it, so
its length and sha256 are checked against signed metadata before anything
reads it. The client's trusted state lives in the cache
(`$PKGREPO_CACHE/tuf/<digest of the URL>/`), never in the root filesystem
being installed; it is kept only once a refresh from it has succeeded, and the
`--trust` root given on the command line must lie on its chain of roots.

Every download has three limits (docs/repository.md): no byte for
`PKGREPO_STALL_TIMEOUT` seconds (30), one file not complete within
`PKGREPO_DOWNLOAD_TIMEOUT` (60), all downloads of one command not complete
within `PKGREPO_COMMAND_TIMEOUT` (600). A server that trickles is cut off.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import shutil
import socket
import stat
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root
from tuf.ngclient import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from pkgrepo.errors import BadInput, PkgrepoError, Unreachable
from pkgrepo.limits import env_seconds
from pkgrepo.package.meta import MetadataError
from pkgrepo.repo.index import INDEX, IndexEntry, parse_index

# Most specific first: python-tuf's errors form a hierarchy.
REFUSALS: tuple[tuple[type[Exception], type[PkgrepoError], str], ...] = (
    (
        tuf_errors.ExpiredMetadataError,
        BadInput,
        "refused {what}: expired metadata ({detail}): the repository is frozen or stale",
    ),
    (
        tuf_errors.BadVersionNumberError,
        BadInput,
        "refused {what}: wrong version, a rollback or mix-and-match ({detail})",
    ),
    (tuf_errors.UnsignedMetadataError, BadInput, "refused {what}: bad signature ({detail})"),
    (
        tuf_errors.LengthOrHashMismatchError,
        BadInput,
        "refused {what}: hash or length mismatch ({detail}): the file was tampered with",
    ),
    (tuf_errors.DownloadLengthMismatchError, BadInput, "refused {what}: too large ({detail}): endless data"),
    (tuf_errors.DownloadHTTPError, Unreachable, "cannot download {what}: {detail}"),
    (tuf_errors.DownloadError, Unreachable, "cannot download {what}: {detail}"),
    (tuf_errors.RepositoryError, BadInput, "refused {what}: {kind} ({detail})"),
)


def _refusal(e: Exception, what: str) -> PkgrepoError:
    """One line naming the file that failed verification and why."""
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    for cls, error, template in REFUSALS:
        if isinstance(e, cls):
            return error(template.format(what=what, detail=detail, kind=type(e).__name__))
    if isinstance(e, OSError):
        return PkgrepoError(f"{what}: {e.strerror or detail}")
    return PkgrepoError(f"{what}: {type(e).__name__}: {detail}")


@dataclass(frozen=True)
class Limits:
    """How long downloads may take, in seconds."""

    stall: float = 30.0
    per_file: float = 60.0
    per_command: float = 600.0

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            env_seconds("PKGREPO_STALL_TIMEOUT", cls.stall),
            env_seconds("PKGREPO_DOWNLOAD_TIMEOUT", cls.per_file),
            env_seconds("PKGREPO_COMMAND_TIMEOUT", cls.per_command),
        )


def _why(e: BaseException) -> str:
    """A network failure in pkgrepo's words, from urllib3's exception chain."""
    import http.client

    import urllib3.exceptions as u3

    seen: BaseException | None = e
    chain = []
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__

    def first(*kinds: type) -> BaseException | None:
        return next((x for x in chain if isinstance(x, kinds)), None)

    # the most telling cause first: urllib3 reports a refused connection as a connect timeout
    if first(u3.NameResolutionError, socket.gaierror):
        return "cannot resolve the host name"
    if first(ConnectionRefusedError):
        return "connection refused; is the server running?"
    if (x := first(http.client.IncompleteRead)) is not None:
        got = x.partial if isinstance(x.partial, int) else len(x.partial)
        return f"the server closed the connection early ({got} bytes read, {x.expected} missing)"
    if (x := first(u3.SSLError)) is not None:
        return f"TLS failed: {str(x).splitlines()[0]}"
    if first(u3.ConnectTimeoutError):
        return "no connection within the stall timeout (PKGREPO_STALL_TIMEOUT)"
    if first(u3.ReadTimeoutError, TimeoutError):
        return "no data within the stall timeout (PKGREPO_STALL_TIMEOUT)"
    if (x := first(ConnectionError)) is not None:
        return f"connection broken: {x.strerror or type(x).__name__}"
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}"


def _translated(e: BaseException) -> tuf_errors.DownloadError:
    if isinstance(e, tuf_errors.DownloadHTTPError):  # python-tuf reads its status (a 404 ends the root chain)
        try:
            phrase = HTTPStatus(e.status_code).phrase
        except ValueError:
            phrase = "unknown status"
        return tuf_errors.DownloadHTTPError(f"HTTP {e.status_code} {phrase}", e.status_code)
    if isinstance(e, tuf_errors.SlowRetrievalError):
        return tuf_errors.SlowRetrievalError(_why(e.__cause__ or e))
    return tuf_errors.DownloadError(_why(e))


class DeadlineFetcher(Urllib3Fetcher):
    """python-tuf's urllib3 fetcher under deadlines per file and per command.

    The transfer runs in a worker thread and this side waits for each piece
    with what is left of the deadline, so no phase — name lookup, connect,
    headers, body — can outlast it, however slowly the server trickles. A
    worker past its deadline is abandoned (a daemon thread; the command fails).
    Failures become python-tuf download errors in pkgrepo's words, and the
    last URL is kept so a refusal can name the file.
    """

    def __init__(self, limits: Limits):
        super().__init__(socket_timeout=max(1, math.ceil(limits.stall)), app_user_agent="pkgrepo")
        self.limits = limits
        self.command_deadline = time.monotonic() + limits.per_command
        self.last = ""

    def _fetch(self, url: str) -> Iterator[bytes]:
        self.last = url
        now = time.monotonic()
        if now + self.limits.per_file <= self.command_deadline:
            deadline = now + self.limits.per_file
            late = f"not complete within {self.limits.per_file:g}s (PKGREPO_DOWNLOAD_TIMEOUT)"
        else:
            deadline = self.command_deadline
            late = f"the command's downloads took over {self.limits.per_command:g}s (PKGREPO_COMMAND_TIMEOUT)"
        pieces: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2)
        stop = threading.Event()
        threading.Thread(target=self._pump, args=(url, pieces, stop), daemon=True).start()
        kind, value = self._next(pieces, deadline, late, stop)
        if kind == "error":
            stop.set()
            raise _translated(value)  # type: ignore[arg-type]
        return self._receive(pieces, deadline, late, stop)

    def _pump(self, url: str, pieces: queue.Queue, stop: threading.Event) -> None:
        def put(item: tuple[str, object]) -> bool:
            while not stop.is_set():
                try:
                    pieces.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            chunks = Urllib3Fetcher._fetch(self, url)
            if put(("open", None)):
                for chunk in chunks:
                    if not put(("chunk", chunk)):
                        break
                else:
                    put(("end", None))
            chunks.close()
        except Exception as e:  # handed to the waiting side, which translates it
            put(("error", e))

    @staticmethod
    def _next(pieces: queue.Queue, deadline: float, late: str, stop: threading.Event) -> tuple[str, object]:
        try:
            return pieces.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            stop.set()
            raise tuf_errors.SlowRetrievalError(late) from None

    def _receive(
        self, pieces: queue.Queue, deadline: float, late: str, stop: threading.Event
    ) -> Iterator[bytes]:
        try:
            while True:
                kind, value = self._next(pieces, deadline, late, stop)
                if kind == "end":
                    return
                if kind == "error":
                    raise _translated(value)  # type: ignore[arg-type]
                yield value  # type: ignore[misc]
        finally:
            stop.set()


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"{url!r}: not a repository URL; write http://HOST[:PORT]/PATH or https://...")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise BadInput(f"{url!r}: the port is not a number from 0 to 65535") from None
    return url.rstrip("/") + "/"


def _root(data: bytes, where: object) -> Metadata[Root]:
    try:
        md = Metadata.from_bytes(data)
    except Exception as e:  # python-tuf's deserialisation raises several kinds
        raise BadInput(
            f"{where}: not TUF root metadata ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if not isinstance(md.signed, Root):
        raise BadInput(f"{where}: TUF {md.signed.type} metadata, not root metadata")
    return md  # type: ignore[return-value]


class RepoClient:
    def __init__(self, url: str, cache: Path, trust: Path | None = None, limits: Limits | None = None):
        self.url = _check_url(url)
        self.dir = cache / "tuf" / hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.metadata = self.dir / "metadata"
        self.trust_path = trust
        self.trust: Metadata[Root] | None = None
        bootstrap = None
        if trust is not None:
            try:
                bootstrap = trust.read_bytes()
            except OSError as e:
                raise BadInput(f"{trust}: cannot read trusted root: {e.strerror}") from None
            self.trust = _root(bootstrap, trust)
        self.first_use = not (self.metadata / "root.json").exists()
        if self.first_use and trust is None:
            raise BadInput(
                f"{self.url}: first use of this repository needs --trust ROOT_JSON (its root metadata)"
            )
        if not self.first_use:
            bootstrap = None  # the cached chain, checked against --trust below
            if self._on_chain() is False:
                raise self._mismatch()
        self.metadata.mkdir(parents=True, exist_ok=True)
        (self.dir / "targets").mkdir(exist_ok=True)
        self.fetcher = DeadlineFetcher(limits or Limits.from_env())
        try:
            self.updater = Updater(
                str(self.metadata),
                self.url + "metadata/",
                str(self.dir / "targets"),
                self.url + "targets/",
                fetcher=self.fetcher,
                bootstrap=bootstrap,
            )
        except Exception as e:  # an invalid root: python-tuf raises several kinds
            where = (
                trust
                if self.first_use
                else f"{self.metadata / 'root.json'} (remove {self.dir} to start over)"
            )
            raise BadInput(
                f"{where}: not a valid trusted root ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            ) from None
        self._refreshed = False

    def _on_chain(self) -> bool | None:
        """Is --trust a root this client's cached chain went through? None: newer than any seen yet."""
        if self.trust is None:
            return True
        seen = self.metadata / "root_history" / f"{self.trust.signed.version}.root.json"
        try:
            data = seen.read_bytes()
        except FileNotFoundError:
            current = _root((self.metadata / "root.json").read_bytes(), self.metadata / "root.json")
            return None if self.trust.signed.version > current.signed.version else False
        except OSError as e:
            raise PkgrepoError(f"{seen}: cannot read the cached root: {e.strerror}") from None
        return _root(data, seen).signed.to_dict() == self.trust.signed.to_dict()

    def _mismatch(self) -> BadInput:
        return BadInput(
            f"--trust {self.trust_path}: root version {self.trust.signed.version if self.trust else '?'} is not "
            f"on the chain of roots this client already trusts for {self.url}; if the repository was "
            f"re-created with new keys, remove {self.dir} and run again"
        )

    def refresh(self) -> None:
        if self._refreshed:
            return
        try:
            self.updater.refresh()
        except Exception as e:  # python-tuf raises its own hierarchy and OSError
            last = self.fetcher.last.removeprefix(self.url) or "metadata"
            error = _refusal(e, f"{last} from {self.url}")
            if self.first_use:  # trust nothing from a first use that failed
                shutil.rmtree(self.dir, ignore_errors=True)
                if isinstance(error, BadInput):
                    error = BadInput(f"{error}; is --trust {self.trust_path} the root of this repository?")
            raise error from None
        if not self._on_chain():
            raise self._mismatch()
        self._refreshed = True

    def fetch(self, target: str) -> Path:
        """A verified local copy of `target` (length and hashes checked against signed metadata)."""
        self.refresh()
        try:
            info = self.updater.get_targetinfo(target)
            if info is None:
                raise BadInput(f"{target}: not signed by the repository at {self.url}")
            path = self._cached_path(target)
            found = self.updater.find_cached_target(info, str(path))
            return Path(found or self.updater.download_target(info, str(path)))
        except PkgrepoError:
            raise
        except Exception as e:
            raise _refusal(e, f"{target} from {self.url}") from None

    def _cached_path(self, target: str) -> Path:
        """Where `target` is cached (python-tuf's own name for it), cleared of anything but a file.

        python-tuf opens the cached path blocking and writes a download through it: a FIFO
        there would hang every fetch, a symlink would redirect the write. A regular file with
        the wrong bytes needs nothing: python-tuf finds it stale and downloads it again."""
        path = self.dir / "targets" / urllib.parse.quote(target, "")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return path
        except OSError as e:
            raise BadInput(
                f"{path}: cannot read the cached target: {e.strerror}; remove it and run again"
            ) from None
        if stat.S_ISREG(mode):
            return path
        try:
            (os.rmdir if stat.S_ISDIR(mode) else os.unlink)(path)
        except OSError as e:
            raise BadInput(
                f"{path}: not a regular file in the client cache and cannot be removed ({e.strerror}); "
                "remove it and run again"
            ) from None
        return path

    def signs(self, target: str) -> bool:
        """Does the repository's signed metadata name `target`?"""
        return self.signed_length(target) is not None

    def signed_length(self, target: str) -> int | None:
        """The length the repository's signed metadata gives `target`; None when it names none
        (a caller with a bound refuses a target before fetching it, not after)."""
        self.refresh()
        try:
            info = self.updater.get_targetinfo(target)
        except Exception as e:
            raise _refusal(e, f"{target} from {self.url}") from None
        return None if info is None else info.length

    def entries(self) -> list[IndexEntry]:
        path = self.fetch(INDEX)
        try:
            return parse_index(path.read_bytes())
        except MetadataError as e:
            raise BadInput(f"{self.url}: signed index is not valid ({e})") from None


def open_client(url: str, trust: Path | None = None) -> RepoClient:
    """The verifying client of `url` with its trusted state in the user's cache."""
    from pkgrepo.paths import default_cache

    return RepoClient(url, default_cache(), trust)
