"""The OCI distribution API, as much as pkgrepo needs: read and write manifests and blobs.

Every read is checked against the digest it was asked for (a registry that serves other
bytes is hostile input, exit 2), bounded in size and time; a registry that cannot be
reached or answers 5xx is `Unreachable` (exit 3). No authentication: pkgrepo pushes to
registries that take anonymous writes on a trusted network, or through skopeo for the
image itself. `--insecure` speaks plain HTTP (a loopback test registry).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import urllib3

from pkgrepo.errors import BadInput, Unreachable
from pkgrepo.safeio import untrusted_json

MAX_MANIFEST = 4 << 20  # containers/image's limit for a manifest
MAX_BLOB = 64 << 20  # an attachment: SBOM, provenance, VEX
TIMEOUT = urllib3.Timeout(connect=10, read=30)
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([MEDIA_MANIFEST, MEDIA_INDEX, "application/vnd.docker.distribution.manifest.v2+json"])
_REF = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+(?::[0-9]{1,5})?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    data: bytes


def listed(doc: dict, key: str, where: str) -> list:
    """`doc[key]` of a registry's JSON answer as a list (none when absent or null); BadInput naming
    `where` when the registry put something else there."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(
            f"{where}: {key} is not a list ({type(value).__name__}); the registry's answer is malformed"
        )
    return value


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Ref:
    """`REGISTRY/REPOSITORY[:TAG][@DIGEST]` (a leading `docker://` is allowed)."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        m = _REF.match(text.removeprefix("docker://"))
        if m is None or ("." not in m["host"] and ":" not in m["host"] and m["host"] != "localhost"):
            raise BadInput(
                f"{text}: expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] (e.g. 127.0.0.1:5000/pkgrepo/hello:prod)"
            )
        return cls(m["host"], m["repo"], m["tag"], m["digest"])

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def at(self, digest: str) -> Ref:
        return Ref(self.host, self.repository, None, digest)


def tag_for(digest: str, suffix: str = "") -> str:
    """The tag scheme of fallbacks: `sha256-HEX` (OCI 1.1 referrers), `sha256-HEX.sig` (sigstore)."""
    return digest.replace(":", "-", 1) + suffix


class Registry:
    def __init__(self, ref: Ref, insecure: bool = False):
        self.ref = ref
        self.base = f"{'http' if insecure else 'https'}://{ref.host}/v2/{ref.repository}"
        self.http = urllib3.PoolManager(
            timeout=TIMEOUT, retries=urllib3.Retry(total=2, redirect=3, status_forcelist=())
        )

    def _request(self, method: str, url: str, limit: int = MAX_MANIFEST, **kw: Any) -> Answer:
        try:
            resp = self.http.request(method, url, preload_content=False, **kw)
        except urllib3.exceptions.HTTPError as e:
            cause = getattr(e, "reason", None) or e
            if isinstance(cause, urllib3.exceptions.NewConnectionError):
                cause = cause.__cause__ or cause
            why = getattr(cause, "strerror", None) or type(cause).__name__
            raise Unreachable(f"registry {self.ref.host}: {method} {url} failed ({why})") from None
        try:
            data = resp.read(limit + 1, decode_content=False)
        except urllib3.exceptions.HTTPError as e:
            raise Unreachable(f"registry {self.ref.host}: reading {url} failed ({e})") from None
        finally:
            resp.release_conn()
        if len(data) > limit:
            raise BadInput(f"registry {self.ref.host}: {url} is larger than {limit} bytes; refusing it")
        if resp.status >= 500:
            raise Unreachable(f"registry {self.ref.host}: {method} {url} answered {resp.status}")
        return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data)

    # --- reads ---

    def manifest(self, reference: str) -> tuple[str, bytes, str] | None:
        """(digest, bytes, media type) of a manifest by tag or digest; None when there is none.
        By digest, the bytes must hash to it; by tag, the digest is computed from the bytes."""
        resp = self._request("GET", f"{self.base}/manifests/{reference}", headers={"Accept": ACCEPT})
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise BadInput(f"registry {self.ref.host}: manifest {reference} answered {resp.status}")
        data = resp.data
        got = sha256(data)
        if DIGEST.match(reference) and got != reference:
            raise BadInput(
                f"registry {self.ref.host}: manifest {reference[:19]} came back as {got[:19]}; "
                "the registry serves other bytes than it names, refusing it"
            )
        return got, data, resp.headers.get("content-type", "")

    def manifest_json(self, reference: str) -> tuple[str, dict] | None:
        found = self.manifest(reference)
        if found is None:
            return None
        digest, data, _ = found
        try:
            doc = untrusted_json(data)
        except ValueError as e:
            raise BadInput(f"registry {self.ref.host}: manifest {reference} is not JSON ({e})") from None
        if not isinstance(doc, dict):
            raise BadInput(f"registry {self.ref.host}: manifest {reference} is not a JSON object")
        return digest, doc

    def blob(self, digest: str, limit: int = MAX_BLOB) -> bytes:
        if not DIGEST.match(digest):
            raise BadInput(f"registry {self.ref.host}: {digest[:80]!r} is not a sha256 digest")
        resp = self._request("GET", f"{self.base}/blobs/{digest}", limit=limit)
        if resp.status == 404:
            raise BadInput(f"registry {self.ref.host}: blob {digest[:19]} of {self.ref.name} is missing")
        if resp.status != 200:
            raise BadInput(f"registry {self.ref.host}: blob {digest[:19]} answered {resp.status}")
        data = resp.data
        if sha256(data) != digest:
            raise BadInput(
                f"registry {self.ref.host}: blob {digest[:19]} does not match its digest; refusing it"
            )
        return data

    def referrers_api(self, digest: str) -> dict | None:
        """The OCI 1.1 referrers API's index, or None where the registry does not have the API."""
        resp = self._request("GET", f"{self.base}/referrers/{digest}", headers={"Accept": MEDIA_INDEX})
        if resp.status != 200 or not resp.headers.get("content-type", "").startswith(MEDIA_INDEX):
            return None
        try:
            doc = untrusted_json(resp.data)
        except ValueError as e:
            raise BadInput(
                f"registry {self.ref.host}: the referrers of {digest[:19]} are not JSON ({e})"
            ) from None
        return doc if isinstance(doc, dict) else None

    def tags(self) -> list[str]:
        resp = self._request("GET", f"{self.base}/tags/list")
        if resp.status == 404:
            return []
        try:
            tags = listed(untrusted_json(resp.data), "tags", f"registry {self.ref.host}: the tag list")
        except (ValueError, AttributeError):
            raise BadInput(f"registry {self.ref.host}: the tag list of {self.ref.name} is not JSON") from None
        if not all(isinstance(t, str) for t in tags):
            raise BadInput(f"registry {self.ref.host}: the tag list of {self.ref.name} holds a non-string")
        return tags

    # --- writes ---

    def put_blob(self, data: bytes) -> str:
        digest = sha256(data)
        head = self._request("HEAD", f"{self.base}/blobs/{digest}", limit=0)
        if head.status == 200:
            return digest
        start = self._request("POST", f"{self.base}/blobs/uploads/", headers={"Content-Length": "0"})
        location = start.headers.get("location")
        if start.status != 202 or not location:
            raise Unreachable(f"registry {self.ref.host}: starting an upload answered {start.status}")
        if location.startswith("/"):
            location = self.base.split("/v2/")[0] + location
        sep = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{sep}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if done.status != 201:
            raise Unreachable(
                f"registry {self.ref.host}: uploading blob {digest[:19]} answered {done.status}"
            )
        return digest

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        resp = self._request(
            "PUT", f"{self.base}/manifests/{reference}", body=data, headers={"Content-Type": media_type}
        )
        if resp.status != 201:
            text = resp.data[:200].decode("utf-8", "replace").strip()
            raise Unreachable(
                f"registry {self.ref.host}: storing manifest {reference} answered {resp.status}: {text}"
            )
        return sha256(data)
