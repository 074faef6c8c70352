"""`pkgrepo verify docker://` against a registry that lies about the shape of its answers.

The registry here is a few lines of HTTP on the loopback that serves one image, its
signature attachment signed by a trusted image key, and then, for one part at a
time, an answer of a shape no registry sends: a number or an object where a list
belongs, JSON nested 100 000 deep. Each lie must end in one line naming the registry's
answer, exit 2, under `prlimit` (tests/test_image_tools.py runs the same command
against a real registry; tests/test_deep_json.py feeds deep JSON to everything else).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import CryptoSigner

from pkgrepo.attest import dsse
from pkgrepo.image.attach import DSSE, PREDICATE
from pkgrepo.image.registry import MEDIA_INDEX, tag_for
from pkgrepo.image.sigkeys import ImageKeys
from pkgrepo.image.sign import SIGNATURE_KEY, SIGNATURE_MEDIA, payload, private_key
from tests.helpers.cli import run_cli
from tests.helpers.layouts import run_bounded

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": {}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(IMAGE).hexdigest()
SLSA = "https://slsa.dev/provenance/v1"
DEEP = b"[" * 100_000 + b"]" * 100_000


def _signed(keys: Path, host: str) -> tuple[bytes, bytes]:
    """The signature attachment's manifest and its payload blob, signed by the current image key."""
    body = payload(f"{host}/pkgrepo/x:latest", DIGEST, 1_700_000_000)
    key = private_key(ImageKeys(keys).signing())
    signature = (
        key.sign(body, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else key.sign(body)
    )
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    layer = {
        "mediaType": SIGNATURE_MEDIA,
        "digest": digest,
        "size": len(body),
        "annotations": {SIGNATURE_KEY: base64.b64encode(signature).decode()},
    }
    return json.dumps({"schemaVersion": 2, "config": {}, "layers": [layer]}).encode(), body


def _referrer(layers: object) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "subject": {"digest": DIGEST}, "artifactType": DSSE,
         "layers": layers}
    ).encode()  # fmt: skip


REFERRER = _referrer([])
REFERRER_DIGEST = "sha256:" + hashlib.sha256(_referrer(5)).hexdigest()
LISTED = {
    "manifests": [
        {"digest": REFERRER_DIGEST, "artifactType": DSSE, "size": 1, "annotations": {PREDICATE: SLSA}}
    ]
}
# the lie -> (the path it answers, its body, what the one line must name)
LIES = {
    "signature-layers-a-number": ("sig", json.dumps({"layers": 5}).encode(), "layers is not a list"),
    "signature-layers-an-object": ("sig", json.dumps({"layers": {"a": 1}}).encode(), "layers is not a list"),
    "signature-deep": ("sig", DEEP, "nests deeper than"),
    "referrers-a-number": ("referrers", json.dumps({"manifests": 5}).encode(), "manifests is not a list"),
    "referrers-deep": ("referrers", DEEP, "nests deeper than"),
    "referrer-layers-a-number": ("referrer", _referrer(5), "layers is not a list"),
}


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """An image key (trusted by the verifier through --image-keys) and a provenance key."""
    env = {"PKGREPO_KEYS": str(tmp_path / "keys"), "COSIGN_PASSWORD": "x"}
    run_cli("image", "key", "init", env=env, check=True)
    pub = tmp_path / "provenance.pub"
    pub.write_bytes(dsse.public_key_bytes(CryptoSigner.generate_ed25519().public_key))
    return tmp_path


def _serve(answers: dict[str, tuple[str, bytes]]) -> ThreadingHTTPServer:
    class Registry(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            found = answers.get(self.path.split("?")[0])
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            media, body = found
            self.send_response(200)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_registry_is_one_line(world: Path, lie: str):
    tmp = world
    answers: dict[str, tuple[str, bytes]] = {}
    server = _serve(answers)
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        base = "/v2/pkgrepo/x"
        sig_manifest, sig_body = _signed(tmp / "keys/image", host)
        answers.update(
            {
                f"{base}/manifests/latest": (MEDIA_MANIFEST, IMAGE),
                f"{base}/manifests/{DIGEST}": (MEDIA_MANIFEST, IMAGE),
                f"{base}/manifests/{tag_for(DIGEST, '.sig')}": (MEDIA_MANIFEST, sig_manifest),
                f"{base}/blobs/sha256:{hashlib.sha256(sig_body).hexdigest()}": ("application/json", sig_body),
                f"{base}/referrers/{DIGEST}": (MEDIA_INDEX, json.dumps(LISTED).encode()),
                f"{base}/manifests/{REFERRER_DIGEST}": (MEDIA_MANIFEST, _referrer(5)),
            }
        )
        where, body, names = LIES[lie]
        path = {
            "sig": f"{base}/manifests/{tag_for(DIGEST, '.sig')}",
            "referrers": f"{base}/referrers/{DIGEST}",
            "referrer": f"{base}/manifests/{REFERRER_DIGEST}",
        }[where]
        answers[path] = (answers[path][0], body)
        proc = run_bounded(
            "verify", f"docker://{host}/pkgrepo/x:latest", "--insecure",
            "--provenance", str(tmp), "--key", str(tmp / "provenance.pub"),
            "--image-keys", str(tmp / "keys/image/keys.json"),
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], proc.stderr
