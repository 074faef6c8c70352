"""A containers-policy.json and registries.d file that make the containers tools verify our images.

`policy.json` requires, for the scope given (a registry, a namespace or a repository), a
`sigstoreSigned` signature by the current image key with the default identity rule
`matchRepoDigestOrExact` (a re-tagged image fails), and rejects everything else unless
`accept_others`. `registries.d/pkgrepo.yaml` turns on `use-sigstore-attachments` for the
scope, so the tools look for signatures in the registry. The public key is written beside
them and named by absolute path. Revoked or expired keys are never written: a policy made
after a revocation refuses what the revoked key signed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.image.registry import Ref
from pkgrepo.image.sigkeys import KeyList


def _scope(text: str) -> str:
    scope = text.removeprefix("docker://").rstrip("/")
    if not scope or "@" in scope or " " in scope or ("/" in scope and ":" in scope.rsplit("/", 1)[-1]):
        raise BadInput(f"--scope {text!r}: expected REGISTRY[/NAMESPACE[/REPOSITORY]], no tag or digest")
    if "/" in scope:
        Ref.parse(scope)
    return scope


def write_policy(out: Path, scope_text: str, keys: KeyList, accept_others: bool = False) -> list[Path]:
    scope = _scope(scope_text)
    record = keys.find(keys.current) if keys.current else None
    if record is None:
        raise BadInput("no current image key to write a policy for; run `pkgrepo image key init` or rotate")
    state = record.status(int(time.time()))
    if state != "valid":
        raise BadInput(f"image key {record.keyid[:16]} is {state}; run `pkgrepo image key rotate` first")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BadInput(f"{out}: not a directory; choose another --out")
    (out / "registries.d").mkdir(parents=True, exist_ok=True)
    pub = (out / f"image-key-{record.keyid[:16]}.pub").resolve()
    policy = {
        "default": [{"type": "insecureAcceptAnything" if accept_others else "reject"}],
        "transports": {
            "docker": {
                scope: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": str(pub),
                        "signedIdentity": {"type": "matchRepoDigestOrExact"},
                    }
                ]
            },
            "docker-daemon": {"": [{"type": "insecureAcceptAnything" if accept_others else "reject"}]},
        },
    }
    files = {
        pub: record.public.encode(),
        out / "policy.json": (json.dumps(policy, indent=2, sort_keys=True) + "\n").encode(),
        out / "registries.d" / "pkgrepo.yaml": (
            f"# written by pkgrepo image policy: sigstore signatures as registry attachments\n"
            f"docker:\n  {json.dumps(scope)}:\n    use-sigstore-attachments: true\n"
        ).encode(),
        out / "image-keys.json": keys.to_bytes(),
    }
    for path, data in files.items():
        if path.is_symlink():
            raise BadInput(f"{path}: is a symlink; refusing to write through it")
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return sorted(files)
