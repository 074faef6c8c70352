"""Image signing keys: sigstore (cosign-format) key pairs that skopeo signs with.

Where they live: `$PKGREPO_KEYS/image/` (default `~/.config/pkgrepo/keys/image/`), beside
the repository keys and the provenance key, directory 0700:

- `KEYID.key`  the private key as containers/image reads it (`--sign-by-sigstore-private-key`):
  PKCS#8 DER encrypted with go-tuf's `encrypted` scheme (scrypt N=2^15 r=8 p=1, the one every
  go-tuf release accepts; NaCl secretbox) in a PEM block `ENCRYPTED COSIGN PRIVATE KEY`, 0600;
- `KEYID.pass` its passphrase (`--sign-passphrase-file`), 0600 — the directory's permissions
  protect the key, as they do the repository keys;
- `KEYID.pub`  the public key (PEM SubjectPublicKeyInfo), what a policy's `keyPath` names;
- `keys.json`  the key list: which key signs now (`current`), and for each key its public
  PEM, creation and expiry times and, once revoked, when. It holds no secret; verifiers
  (`pkgrepo verify docker://REF --image-keys FILE`, `pkgrepo image policy`) read it.

KEYID is the sha256 of the public key's DER. Rotation (`pkgrepo image key rotate`) makes a
new key current and keeps the old one trusted until it expires, or revokes it at once with
`--revoke-old`; `pkgrepo image key revoke KEYID` revokes any key. A policy written after a
revocation no longer names the key.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pkgrepo.errors import BadInput
from pkgrepo.safeio import read_regular, untrusted_json

PEM_TYPES = ("ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY")
SCRYPT = {"N": 32768, "r": 8, "p": 1}  # go-tuf's "legacy" parameters: accepted by every release
ALLOWED_SCRYPT = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})
DEFAULT_VALID_DAYS = 365
LIST_BYTES = 1 << 20  # a key list of a few keys is a few KiB
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def default_dir() -> Path:
    base = os.environ.get("PKGREPO_KEYS") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "pkgrepo", "keys"
    )
    return Path(base) / "image"


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, where: str) -> int:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{where}: {text!r} is not a date (YYYY-MM-DD or an ISO 8601 time)") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


# --- the encrypted private key (go-tuf `encrypted`, as containers/image and cosign read it) ---


def _scrypt(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(
        passphrase, salt=salt, n=params["N"], r=params["r"], p=params["p"], maxmem=256 << 20, dklen=32
    )


def encrypt_private_key(der: bytes, passphrase: bytes) -> bytes:
    """PKCS#8 DER → the encrypted PEM skopeo's `--sign-by-sigstore-private-key` loads."""
    from nacl.secret import SecretBox

    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    box = SecretBox(_scrypt(passphrase, salt, SCRYPT))
    sealed = box.encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": SCRYPT, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = base64.encodebytes(json.dumps(doc, separators=(",", ":")).encode()).decode()
    body = "".join(body.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {PEM_TYPES[0]}-----\n" + "\n".join(lines) + f"\n-----END {PEM_TYPES[0]}-----\n"
    ).encode()


def decrypt_private_key(where: Path, pem: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 DER inside an encrypted cosign/sigstore PEM; BadInput naming `where` otherwise."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    text = pem.decode("ascii", "replace").strip().splitlines()
    if len(text) < 3 or not any(text[0] == f"-----BEGIN {t}-----" for t in PEM_TYPES):
        raise BadInput(f"{where}: not an encrypted cosign/sigstore private key (PEM {PEM_TYPES[0]})")
    try:
        doc = untrusted_json(base64.b64decode("".join(text[1:-1]), validate=True))
        params = {k: int(doc["kdf"]["params"][k]) for k in ("N", "r", "p")}
        salt = base64.b64decode(doc["kdf"]["salt"])
        nonce = base64.b64decode(doc["cipher"]["nonce"])
        sealed = base64.b64decode(doc["ciphertext"])
        names = (doc["kdf"]["name"], doc["cipher"]["name"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{where}: the encrypted key is malformed ({type(e).__name__}: {e})") from None
    if names != ("scrypt", "nacl/secretbox") or params not in ALLOWED_SCRYPT or len(nonce) != 24:
        raise BadInput(f"{where}: unsupported key encryption {names} {params}; use scrypt and nacl/secretbox")
    try:
        return SecretBox(_scrypt(passphrase, salt, params)).decrypt(sealed, nonce)
    except CryptoError:
        raise BadInput(f"{where}: wrong passphrase for the private key (or the key is damaged)") from None


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_public_pem(where: Path | str, data: bytes) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise BadInput(f"{where}: not a PEM public key ({e})") from None
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise BadInput(f"{where}: a {type(key).__name__} key; image keys are ECDSA or Ed25519")


def verify_signature(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    """sigstore's verifiers: ECDSA over SHA-256 (ASN.1 signature), Ed25519 over the message."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


# --- the key list ---


@dataclass(frozen=True)
class KeyRecord:
    keyid: str
    public: str  # PEM
    created: int
    expires: int
    revoked: int | None = None

    def status(self, now: int) -> str:
        if self.revoked is not None and self.revoked <= now:
            return "revoked"
        return "expired" if now >= self.expires else "valid"

    def public_key(self) -> PublicKey:
        return load_public_pem(f"image key {self.keyid[:16]}", self.public.encode())

    def to_dict(self) -> dict:
        out = {"keyid": self.keyid, "public": self.public, "created": iso(self.created)}
        out["expires"] = iso(self.expires)
        if self.revoked is not None:
            out["revoked"] = iso(self.revoked)
        return out

    @classmethod
    def from_dict(cls, where: str, d: dict) -> KeyRecord:
        return cls(
            str(d["keyid"]),
            str(d["public"]),
            parse_time(str(d["created"]), where),
            parse_time(str(d["expires"]), where),
            parse_time(str(d["revoked"]), where) if d.get("revoked") else None,
        )


@dataclass(frozen=True)
class KeyList:
    """The trusted image keys (`keys.json`): public, no secret in it."""

    current: str | None
    keys: tuple[KeyRecord, ...]

    def find(self, keyid: str) -> KeyRecord | None:
        found = [k for k in self.keys if k.keyid.startswith(keyid)] if len(keyid) >= 8 else []
        return found[0] if len(found) == 1 else None

    def to_bytes(self) -> bytes:
        doc = {
            "current": self.current,
            "keys": [k.to_dict() for k in self.keys],
            "type": "pkgrepo-image-keys",
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> KeyList:
        try:  # the user's own argument may be a link; a FIFO or device is refused, not waited on
            data = read_regular(path, "the image key list", LIST_BYTES, follow=True)
        except FileNotFoundError:
            raise BadInput(f"{path}: no image key list there; pass --image-keys FILE") from None
        try:
            doc = untrusted_json(data)
            if doc.get("type") != "pkgrepo-image-keys":
                raise ValueError("type is not pkgrepo-image-keys")
            keys = tuple(KeyRecord.from_dict(str(path), k) for k in doc["keys"])
            for k in keys:
                if key_id(k.public_key()) != k.keyid:
                    raise ValueError(f"key {k.keyid[:16]} does not match its public key")
            return cls(doc.get("current"), keys)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BadInput(f"{path}: not a pkgrepo image key list ({type(e).__name__}: {e})") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Signing:
    """What skopeo needs to sign: the encrypted key file and its passphrase file."""

    keyid: str
    key: Path
    passphrase: Path


class ImageKeys:
    """The image key store in one directory (see the module's docstring)."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or default_dir()
        self.list_path = self.directory / "keys.json"

    def read(self) -> KeyList:
        return KeyList.read(self.list_path) if self.list_path.exists() else KeyList(None, ())

    def _save(self, keys: KeyList) -> None:
        _write(self.list_path, keys.to_bytes(), 0o644)

    @contextlib.contextmanager
    def _locked(self):
        """The store created (0700, never through a symlink) and held: one change at a time."""
        if self.directory.is_symlink():
            raise BadInput(f"{self.directory}: is a symlink; refusing to keep signing keys through it")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def add(
        self, private: Path | None, passphrase: bytes | None, expires: int | None, first: bool = False
    ) -> KeyRecord:
        """A new key (generated, or the user's `private` key file) made current; the list saved.
        `first`: refused when a key is already current (`image key init`)."""
        now = int(time.time())
        if private is None:
            sk = ec.generate_private_key(ec.SECP256R1())
            der = sk.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        else:
            der = _read_user_key(private, passphrase)
            sk = serialization.load_der_private_key(der, None)
        pub = sk.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
        kid = key_id(pub)
        if expires is not None and expires <= now:
            raise BadInput(f"--expires {iso(expires)} is not in the future")
        record = KeyRecord(kid, public_pem(pub).decode(), now, expires or now + DEFAULT_VALID_DAYS * 86400)
        with self._locked():
            keys = self.read()
            if first and keys.current is not None:
                raise BadInput(
                    f"image key {keys.current[:16]} already exists; use `pkgrepo image key rotate` to replace it"
                )
            if any(k.keyid == kid for k in keys.keys):
                raise BadInput(f"{private or 'the new key'}: key {kid[:16]} is already in {self.list_path}")
            pw = secrets.token_hex(24).encode()
            _write(self.directory / f"{kid}.pass", pw + b"\n", 0o600)
            _write(self.directory / f"{kid}.key", encrypt_private_key(der, pw), 0o600)
            _write(self.directory / f"{kid}.pub", record.public.encode(), 0o644)
            self._save(KeyList(kid, (*keys.keys, record)))
        return record

    def revoke(self, keyid: str) -> KeyRecord:
        if not self.list_path.is_file():
            raise BadInput(f"{self.list_path}: no image keys; nothing to revoke")
        with self._locked():
            keys = self.read()
            found = keys.find(keyid)
            if found is None:
                raise BadInput(f"{keyid}: no such image key in {self.list_path} (give 8 or more hex digits)")
            if found.revoked is not None:
                return found
            revoked = replace(found, revoked=int(time.time()))
            current = None if keys.current == found.keyid else keys.current
            self._save(KeyList(current, tuple(revoked if k is found else k for k in keys.keys)))
        return revoked

    def signing(self) -> Signing:
        """The current key, checked usable (valid, 0600) before skopeo is started."""
        keys = self.read()
        record = keys.find(keys.current) if keys.current else None
        if record is None:
            raise BadInput(
                f"{self.directory}: no current image signing key; run `pkgrepo image key init` "
                "(or rotate after a revocation)"
            )
        state = record.status(int(time.time()))
        if state != "valid":
            raise BadInput(f"image key {record.keyid[:16]} is {state}; run `pkgrepo image key rotate`")
        key, pw = self.directory / f"{record.keyid}.key", self.directory / f"{record.keyid}.pass"
        for p in (key, pw):
            try:
                if os.lstat(p).st_mode & 0o077:
                    raise BadInput(f"{p}: readable by others; run chmod 600 on it")
            except FileNotFoundError:
                raise BadInput(f"{p}: missing; the image key store is incomplete, rotate the key") from None
        return Signing(record.keyid, key, pw)


def _read_user_key(path: Path, passphrase: bytes | None) -> bytes:
    """A user's private key: an encrypted cosign/sigstore PEM (with its passphrase) or a plain
    PKCS#8 PEM; ECDSA or Ed25519. Returns its PKCS#8 DER."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the private key ({e.strerror})") from None
    if any(f"BEGIN {t}".encode() in data for t in PEM_TYPES):
        if passphrase is None:
            raise BadInput(f"{path}: an encrypted key; pass --passphrase-file FILE or set COSIGN_PASSWORD")
        der = decrypt_private_key(path, data, passphrase)
    else:
        try:
            sk = serialization.load_pem_private_key(data, passphrase or None)
        except (ValueError, TypeError) as e:
            raise BadInput(f"{path}: not a PEM private key ({e})") from None
        der = sk.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    try:
        sk = serialization.load_der_private_key(der, None)
    except (ValueError, TypeError) as e:
        raise BadInput(f"{path}: the decrypted key is not PKCS#8 ({e})") from None
    if not isinstance(sk, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise BadInput(f"{path}: a {type(sk).__name__}; image keys are ECDSA or Ed25519")
    return der
