"""The provenance signing key and DSSE envelopes (securesystemslib).

The key is Ed25519, of its own (not a repository role's), kept like the repository
keys: `$PKGREPO_KEYS/provenance/provenance.pem` (or `~/.config/pkgrepo/keys/provenance/`),
directory 0700, file 0600, created on first use. The build sandbox binds neither that
directory nor the home directory, so no build can read it. The public key is written as
securesystemslib's key JSON (`keyid`, `keytype`, `scheme`, `keyval.public`).
"""

from __future__ import annotations

import os
from pathlib import Path

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError, UnsupportedAlgorithmError, VerificationError
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from pkgrepo.errors import BadInput
from pkgrepo.package.meta import canonical_json
from pkgrepo.repo.keys import KeyStore
from pkgrepo.safeio import parse_json, read_regular

ROLE = "provenance"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEY_BYTES = 64 * 1024  # a key file is a few hundred bytes


def default_key_dir() -> Path:
    base = os.environ.get("PKGREPO_KEYS") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "pkgrepo", "keys"
    )
    return Path(base) / ROLE


def signer(directory: Path | None = None) -> CryptoSigner:
    """The provenance signer, created (0600 in a 0700 directory) on first use."""
    store = KeyStore(directory or default_key_dir())
    return store.load(ROLE) if store.path(ROLE).exists() else store.generate(ROLE)


def public_key_bytes(key: Key) -> bytes:
    return canonical_json({"keyid": key.keyid, **key.to_dict()})


def load_public_key(path: Path, data: bytes | None = None) -> SSlibKey:
    try:
        raw = parse_json(
            read_regular(path, "public key", KEY_BYTES) if data is None else data, path, "public key"
        )
        return SSlibKey.from_dict(raw.pop("keyid"), raw)
    except FileNotFoundError:
        raise BadInput(f"{path}: cannot read public key (no such file); pass --key PUB") from None
    except (ValueError, KeyError, TypeError, AttributeError, FormatError) as e:
        raise BadInput(
            f"{path}: not a pkgrepo public key ({type(e).__name__}: {e}); "
            "use the keys/provenance-KEYID.pub the repository publishes"
        ) from None


def sign(payload: bytes, key: CryptoSigner) -> bytes:
    env = Envelope(payload, PAYLOAD_TYPE, {})
    env.sign(key)
    return canonical_json(env.to_dict())


def read_envelope(path: Path, data: bytes) -> Envelope:
    try:
        env = Envelope.from_dict(parse_json(data, path, "DSSE envelope"))
    except (ValueError, KeyError, TypeError, AttributeError, FormatError) as e:
        raise BadInput(
            f"{path}: not a DSSE envelope ({type(e).__name__}: {e}); re-download the provenance"
        ) from None
    if env.payload_type != PAYLOAD_TYPE:
        raise BadInput(f"{path}: payloadType is {env.payload_type!r}, expected {PAYLOAD_TYPE}")
    return env


def verify(path: Path, env: Envelope, key: Key) -> None:
    """Raise BadInput unless `key` signed `env`."""
    try:
        env.verify([key], 1)
    except (VerificationError, UnsupportedAlgorithmError, ValueError) as e:
        raise BadInput(f"{path}: signature does not verify with key {key.keyid[:16]} ({e})") from None
