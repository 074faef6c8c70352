"""Finding private keys in file contents: key material, not marker strings.

A finding is a PEM (`-----BEGIN [TYPE ]PRIVATE KEY-----`) or OpenSSH private-key
block whose body decodes as base64 and parses as a key with `cryptography`'s
loaders (an encrypted key counts: the loader recognises it and asks for a
password). A marker with no key after it (pkgrepo's own rule, documentation,
a placeholder body, a public key or certificate) is not a finding.

Contents are streamed in blocks with a bounded window, so any file size costs
the same memory. Blocks are looked for in the raw bytes, which covers
bytecode: a `.pyc` marshals string and bytes constants as their UTF-8 or raw
bytes, so a key in a constant is there verbatim. Blocks written into source or
JSON text with `\\n` escapes are read as if unescaped. A zip archive (wheels,
eggs, jars, zipapps, zipped stdlib) is looked into member by member, one level
of nested archives too, within `ZIP_MAX_BYTES` of decompressed data.
"""

from __future__ import annotations

import base64
import binascii
import re
import zipfile
from collections.abc import Iterable
from typing import IO

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

BEGIN = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY-----")
END = b"-----END "
MAX_BLOCK = 64 << 10  # an RSA-16384 key in PEM is about 12 KiB; escapes and quotes add little
BLOCK = 1 << 20
ZIP_MAX_BYTES = 1 << 30  # decompressed bytes looked at in one archive
ZIP_MAX_MEMBERS = 200_000
NESTED_MAX = 64 << 20  # a nested archive is looked into when at most this large
B64 = re.compile(rb"[^A-Za-z0-9+/=]")
OPENSSH_MAGIC = b"openssh-key-v1\0"


def _body(block: bytes) -> tuple[bytes, bool]:
    """The base64 body of a block (escapes undone, headers and quoting dropped) and whether it
    carries RFC 1421 encryption headers."""
    text = block.replace(b"\\r", b"").replace(b"\\n", b"\n").replace(b"\r", b"")
    inner = text.split(b"\n")[1:-1] if b"\n" in text else []
    headers = [x for x in inner if b":" in x]
    body = b"".join(B64.sub(b"", x) for x in inner if b":" not in x)
    return body, any(b"ENCRYPTED" in h for h in headers)


def key_kind(label: str, block: bytes) -> str | None:
    """What private key `block` (from its BEGIN line to its END line) holds, or None when none."""
    body, encrypted = _body(block)
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(der) < 32:
        return None
    if encrypted:  # RFC 1421 headers: the body is ciphertext, whole cipher blocks of it
        return "encrypted private key" if len(der) % 8 == 0 else None
    pem = (
        f"-----BEGIN {label}PRIVATE KEY-----\n".encode()
        + base64.encodebytes(der)
        + f"-----END {label}PRIVATE KEY-----\n".encode()
    )
    load = load_ssh_private_key if label == "OPENSSH " else load_pem_private_key
    try:
        key = load(pem, password=None)
    except TypeError:  # recognised, and encrypted: a password is asked for
        return "encrypted private key"
    except UnsupportedAlgorithm:
        return "private key" if label != "OPENSSH " or der.startswith(OPENSSH_MAGIC) else None
    except ValueError:
        return None
    algo = type(key).__name__.replace("PrivateKey", "").replace("EllipticCurve", "EC")
    return f"{algo} private key" + (" (OpenSSH)" if label == "OPENSSH " else "")


class KeyScanner:
    """Feed a file's bytes in blocks; `found` holds the kinds of the keys seen, in order."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._scan(final=False)

    def close(self) -> list[str]:
        self._scan(final=True)
        self._buf = b""
        return self.found

    def _scan(self, final: bool) -> None:
        buf, pos = self._buf, 0
        while (m := BEGIN.search(buf, pos)) is not None:
            end = buf.find(END, m.end(), m.start() + MAX_BLOCK)
            close = buf.find(b"-----", end + len(END), end + len(END) + 64) if end >= 0 else -1
            if close < 0 and not final and len(buf) - m.start() < MAX_BLOCK:
                self._buf = buf[m.start() :]  # the block may go on in the next feed
                return
            if close >= 0:
                kind = key_kind(m.group(1).decode(), buf[m.start() : close + 5])
                if kind:
                    self.found.append(kind)
                    pos = close + 5
                    continue
            pos = m.end()
        self._buf = buf[max(pos, len(buf) - 64) :]  # a marker cut by the block boundary


def scan_stream(f: IO[bytes], limit: int | None = None) -> list[str]:
    """The private keys in a stream's bytes (its first `limit` bytes when given)."""
    scanner = KeyScanner()
    left = limit
    while left is None or left > 0:
        block = f.read(BLOCK if left is None else min(BLOCK, left))
        if not block:
            break
        if left is not None:
            left -= len(block)
        scanner.feed(block)
    return scanner.close()


def scan_zip(f: IO[bytes], depth: int = 1) -> list[str]:
    """The private keys in a zip archive's members, as `member: kind`; [] when `f` is no zip."""
    try:
        if not zipfile.is_zipfile(f):
            return []
        f.seek(0)
        archive = zipfile.ZipFile(f)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return []
    found: list[str] = []
    budget = ZIP_MAX_BYTES
    for info in members[:ZIP_MAX_MEMBERS]:
        if info.is_dir() or budget <= 0:
            continue
        try:
            with archive.open(info) as member:
                kinds = scan_stream(member, budget)
                budget -= info.file_size
                if depth > 0 and info.file_size <= NESTED_MAX:
                    member.seek(0)
                    if member.read(4) == b"PK\x03\x04":
                        kinds += scan_zip(member, depth - 1)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            continue  # an encrypted or damaged member: its raw bytes were scanned with the archive
        found += [f"{info.filename}: {k}" for k in kinds]
    return found


def scan_chunks(blocks: Iterable[bytes]) -> list[str]:
    scanner = KeyScanner()
    for b in blocks:
        scanner.feed(b)
    return scanner.close()
