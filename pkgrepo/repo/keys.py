"""Private signing keys, one Ed25519 key per TUF role, kept outside the repository tree.

Default location: `$PKGREPO_KEYS/<repo>-<hash>` or, without that variable,
`~/.config/pkgrepo/keys/<repo>-<hash>`, where `<repo>` is the repository
directory's name and `<hash>` a digest of its absolute path. The directory is
0700 and every key file 0600.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from pkgrepo.errors import BadInput


def default_keys_dir(repo: Path) -> Path:
    base = os.environ.get("PKGREPO_KEYS") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "pkgrepo", "keys"
    )
    absolute = str(repo.resolve())
    return Path(base) / f"{repo.resolve().name}-{hashlib.sha256(absolute.encode()).hexdigest()[:12]}"


class KeyStore:
    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, role: str) -> Path:
        return self.directory / f"{role}.pem"

    def generate(self, role: str) -> CryptoSigner:
        """A new key for `role`, written 0600 (replacing any previous one)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        signer = CryptoSigner.generate_ed25519()
        tmp = self.path(role).with_suffix(".pem.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signer.private_bytes)
        os.replace(tmp, self.path(role))
        return signer

    def load(self, role: str) -> CryptoSigner:
        path = self.path(role)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadInput(
                f"{path}: cannot read the {role} signing key ({e.strerror}); pass --keys DIR"
            ) from None
        if os.stat(path).st_mode & 0o077:
            raise BadInput(f"{path}: signing key is readable by others; run chmod 600 on it")
        return CryptoSigner(load_pem_private_key(data, password=None))
