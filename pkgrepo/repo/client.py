"""The verifying client: python-tuf's ngclient between the network and the root filesystem.

Metadata is refreshed with `tuf.ngclient.Updater` (root chain, timestamp,
snapshot, targets, hash bins: expiry, rollback, signatures, lengths, versions),
and every target — the index and each package — is downloaded through it, so
its length and sha256 are checked against signed metadata before anything
reads it. The client's trusted state lives in the cache
(`$PKGREPO_CACHE/tuf/<digest of the URL>/`), never in the root filesystem
being installed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from pkgrepo.errors import BadInput, PkgrepoError
from pkgrepo.package.meta import PackageInfo
from pkgrepo.repo.repository import INDEX, parse_index
from pkgrepo.resolve.model import Package
from pkgrepo.resolve.native import to_package

INFO_FIELDS = set(PackageInfo.model_fields)


# Most specific first: python-tuf's errors form a hierarchy.
REFUSALS: tuple[tuple[type[Exception], type[PkgrepoError], str], ...] = (
    (
        tuf_errors.ExpiredMetadataError,
        BadInput,
        "expired metadata ({detail}): the repository is frozen or stale",
    ),
    (tuf_errors.BadVersionNumberError, BadInput, "wrong version, a rollback or mix-and-match ({detail})"),
    (tuf_errors.UnsignedMetadataError, BadInput, "bad signature ({detail})"),
    (
        tuf_errors.LengthOrHashMismatchError,
        BadInput,
        "hash or length mismatch ({detail}): the file was tampered with",
    ),
    (tuf_errors.DownloadLengthMismatchError, BadInput, "too large ({detail}): endless data"),
    (tuf_errors.DownloadHTTPError, PkgrepoError, "cannot download: {detail}"),
    (
        tuf_errors.DownloadError,
        PkgrepoError,
        "cannot download: {detail}; is the repository URL right and served?",
    ),
    (tuf_errors.RepositoryError, BadInput, "{kind} ({detail})"),
)


def _refusal(e: Exception, what: str) -> PkgrepoError:
    """One line naming the file that failed verification and why."""
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    for cls, error, template in REFUSALS:
        if isinstance(e, cls):
            return error(f"refused {what}: " + template.format(detail=detail, kind=type(e).__name__))
    return PkgrepoError(f"{what}: {detail}")


class _Fetcher(Urllib3Fetcher):
    """python-tuf's own fetcher, remembering the last URL so a refusal can name the file."""

    last = ""

    def _fetch(self, url: str):
        self.last = url
        return super()._fetch(url)


class RepoClient:
    def __init__(self, url: str, cache: Path, trust: Path | None = None):
        self.url = url.rstrip("/") + "/"
        self.dir = cache / "tuf" / hashlib.sha256(self.url.encode()).hexdigest()[:16]
        metadata = self.dir / "metadata"
        metadata.mkdir(parents=True, exist_ok=True)
        (self.dir / "targets").mkdir(exist_ok=True)
        bootstrap = None
        if not (metadata / "root.json").exists():
            if trust is None:
                raise BadInput(
                    f"{self.url}: first use of this repository needs --trust ROOT_JSON (its root metadata)"
                )
            try:
                bootstrap = trust.read_bytes()
            except OSError as e:
                raise BadInput(f"{trust}: cannot read trusted root: {e.strerror}") from None
        self.fetcher = _Fetcher()
        try:
            self.updater = Updater(
                str(metadata), self.url + "metadata/", str(self.dir / "targets"), self.url + "targets/",
                fetcher=self.fetcher, bootstrap=bootstrap,
            )  # fmt: skip
        except (tuf_errors.RepositoryError, ValueError) as e:
            raise BadInput(f"{trust or metadata / 'root.json'}: not a valid trusted root ({e})") from None
        self._refreshed = False

    def refresh(self) -> None:
        if self._refreshed:
            return
        try:
            self.updater.refresh()
        except Exception as e:  # python-tuf raises its own hierarchy and OSError
            last = self.fetcher.last.removeprefix(self.url) or "metadata"
            raise _refusal(e, f"{last} from {self.url}") from None
        self._refreshed = True

    def fetch(self, target: str) -> Path:
        """A verified local copy of `target` (length and hashes checked against signed metadata)."""
        self.refresh()
        try:
            info = self.updater.get_targetinfo(target)
            if info is None:
                raise BadInput(f"{target}: not signed by the repository at {self.url}")
            return Path(self.updater.find_cached_target(info) or self.updater.download_target(info))
        except PkgrepoError:
            raise
        except Exception as e:
            raise _refusal(e, target) from None

    def entries(self) -> list[dict]:
        path = self.fetch(INDEX)
        try:
            return parse_index(path.read_bytes())
        except ValueError as e:
            raise BadInput(f"{self.url}: signed index is not valid ({e})") from None


class EntriesIndex:
    """Adapter: the verified repository index as a minimizer index."""

    def __init__(self, entries: list[dict], label: str):
        self.label = label
        self.entries = {e["path"]: e for e in entries}
        self._by_name: dict[str, list[Package]] = {}
        for e in entries:
            pkg = to_package(
                PackageInfo.model_validate({k: v for k, v in e.items() if k in INFO_FIELDS}), e["path"]
            )
            for name in {pkg.name, *(n for n, _v in pkg.provides)}:
                self._by_name.setdefault(name, []).append(pkg)

    def providers(self, name: str) -> list[Package]:
        return list(self._by_name.get(name, []))

    def names(self) -> list[str]:
        return sorted({e["name"] for e in self.entries.values()})
