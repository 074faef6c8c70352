"""Finding private keys in file contents: key material, not marker strings.

A finding is key material that `cryptography`'s loaders parse as a private key
(an encrypted key counts: the loader recognises it and asks for a password), in
any of the encodings a key is stored in:

- a PEM (`-----BEGIN [TYPE ]PRIVATE KEY-----`) or OpenSSH private-key block;
- DER (PKCS#1, PKCS#8, SEC1, and PKCS#8 encrypted with PBES2) anywhere in the
  bytes: each `SEQUENCE` whose first bytes are those of a private key is loaded;
- base64 of such DER without PEM armour (a JSON value, an environment file, a
  line of its own): each base64 run of at least 64 characters, from its start and
  from each line start within it, whose first bytes decode to a key's header;
- any of the above in UTF-16 text (little or big endian), read as its two
  interleaved byte streams once a file shows UTF-16 text;
- any of the above inside a gzip, xz or bzip2 stream (`scan_compressed`) or a zip
  archive (wheels, eggs, jars, zipapps, zipped stdlib; `scan_zip`), one level of
  nested archives too, within a budget of decompressed data.

A marker with no key after it (pkgrepo's own rule, documentation, a placeholder
body, a public key or certificate) is not a finding, and one key found in two
encodings (a PEM block is also a base64 run) is reported once. At most
`MAX_ATTEMPTS` key-shaped structures are loaded per file: a file with more (chaff
that costs a load each, and could hide a key behind it) is itself a finding.

Contents are streamed in blocks with a bounded window, so any file size costs
the same memory. Blocks are looked for in the raw bytes, which covers bytecode:
a `.pyc` marshals string and bytes constants as their UTF-8 or raw bytes, so a
key in a constant is there verbatim. Text written with `\\n` escapes (source,
JSON) is read as if unescaped.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import gzip
import hashlib
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_pem_private_key,
    load_ssh_private_key,
)

BEGIN = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY-----")
END = b"-----END "
MAX_BLOCK = 64 << 10  # an RSA-16384 key in PEM is about 12 KiB; escapes and quotes add little
BLOCK = 1 << 20
ZIP_MAX_BYTES = 1 << 30  # decompressed bytes looked at in one archive
ZIP_MAX_MEMBERS = 200_000
NESTED_MAX = 64 << 20  # a nested archive is looked into when at most this large
B64 = re.compile(rb"[^A-Za-z0-9+/=]")
OPENSSH_MAGIC = b"openssh-key-v1\0"
# The first bytes of a private key in DER: SEQUENCE of at most 10 KiB (an RSA-16384 PKCS#8 key is
# about 9.4 KiB), then version 0 or 1 followed by the modulus (PKCS#1), the key (SEC1) or the
# algorithm (PKCS#8); or an EncryptedPrivateKeyInfo with PBES2 (what `openssl pkcs8 -topk8` writes).
DER_LEN = rb"(?:[\x20-\x7f]|\x81[\x80-\xff]|\x82[\x01-\x27][\x00-\xff])"
DER_KEY = re.compile(
    rb"\x30" + DER_LEN + rb"(?:\x02\x01[\x00\x01][\x02\x04\x30]"
    rb"|\x30(?:[\x00-\x7f]|\x81[\x80-\xff])\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d)"
)
MAX_DER = 10 << 10
# base64 of a key's DER starts with "M" (0x30) and, for the lengths DER_KEY admits, C to I
B64_KEY = re.compile(rb"M[C-I][A-Za-z0-9+/]{22}")
B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
MAX_B64 = MAX_DER * 4 // 3 + 4  # base64 characters of the largest DER key
MAX_ATTEMPTS = 1024  # key-shaped structures loaded in one file (an ELF library has none or a few)
WINDOW = 64 << 10  # bytes carried from one block to the next: more than any key in any encoding
# what a key in UTF-16 text shows, little or big endian: PEM armour, or base64 of DER
# (two searches that each start with a literal: one alternation of them is ten times slower)
UTF16_DASHES = b"-\x00-\x00-"
UTF16_BASE64 = re.compile(rb"M\x00[C-I]")
COMPRESSED_MAX_BYTES = 1 << 30  # decompressed bytes looked at in one gzip, xz or bzip2 file


def _body(block: bytes) -> tuple[bytes, bool]:
    """The base64 body of a block (escapes undone, headers and quoting dropped) and whether it
    carries RFC 1421 encryption headers."""
    text = block.replace(b"\\r", b"").replace(b"\\n", b"\n").replace(b"\r", b"")
    inner = text.split(b"\n")[1:-1] if b"\n" in text else []
    headers = [x for x in inner if b":" in x]
    body = b"".join(B64.sub(b"", x) for x in inner if b":" not in x)
    return body, any(b"ENCRYPTED" in h for h in headers)


def key_kind(label: str, block: bytes) -> tuple[str, bytes] | None:
    """What private key `block` (from its BEGIN line to its END line) holds, with its decoded
    body, or None when none."""
    body, encrypted = _body(block)
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(der) < 32:
        return None
    if encrypted:  # RFC 1421 headers: the body is ciphertext, whole cipher blocks of it
        return ("encrypted private key", der) if len(der) % 8 == 0 else None
    kind = _pem_kind(label, der)
    return (kind, der) if kind else None


def _pem_kind(label: str, der: bytes) -> str | None:
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


def _unbroken(text: bytes) -> bytes:
    """Base64 text without its line breaks, written or escaped (`\\n` in JSON or source), and the
    blanks that indent it (YAML, XML)."""
    return text.replace(b"\\n", b"").replace(b"\\r", b"").translate(None, b"\r\n \t")


def _der_length(data: bytes, at: int) -> int | None:
    """The whole length (header included) of the DER element at `at`, or None."""
    if at + 2 > len(data):
        return None
    first = data[at + 1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n not in (1, 2) or at + 2 + n > len(data):
        return None
    return 2 + n + int.from_bytes(data[at + 2 : at + 2 + n], "big")


def der_kind(der: bytes) -> str | None:
    """What private key the DER `der` is, or None."""
    try:
        key = load_der_private_key(der, password=None)
    except TypeError:  # recognised, and encrypted: a password is asked for
        return "encrypted private key"
    except (ValueError, UnsupportedAlgorithm):
        return None
    return type(key).__name__.replace("PrivateKey", "").replace("EllipticCurve", "EC") + " private key"


class KeyScanner:
    """Feed a file's bytes in blocks; `close` returns the kinds of the keys seen, in order."""

    def __init__(self, utf16: bool = True, seen: set[bytes] | None = None) -> None:
        self.found: list[str] = []
        self._buf = b""  # the PEM window
        self._tail = b""  # the last WINDOW bytes, for DER and base64 that a block boundary cut
        self._seen = set() if seen is None else seen  # digests of the keys reported: one key, one finding
        self._pos = 0  # bytes fed so far
        self._der_end = 0  # where the last DER key found ends in the file
        self._attempts = 0  # key-shaped structures loaded so far
        self._utf16 = utf16
        self._halves: tuple[KeyScanner, KeyScanner] | None = None  # UTF-16: the two byte streams

    def feed(self, data: bytes) -> None:
        window = self._tail + data
        self._buf += data
        self._scan(final=False)
        self._scan_der(window)
        self._scan_base64(window)
        if self._utf16:
            self._feed_halves(window, self._pos - len(self._tail))
        self._pos += len(data)
        self._tail = window[-WINDOW:]

    def close(self) -> list[str]:
        self._scan(final=True)
        self._buf = b""
        if self._halves is not None:
            for half in self._halves:
                for kind in half.close():
                    self.found.append(f"{kind} (UTF-16)")
        return self.found

    def _report(self, kind: str, der: bytes) -> bool:
        digest = hashlib.sha256(der).digest()
        if digest in self._seen:
            return False
        self._seen.add(digest)
        self.found.append(kind)
        return True

    def _scan(self, final: bool) -> None:
        buf, pos = self._buf, 0
        while (m := BEGIN.search(buf, pos)) is not None:
            end = buf.find(END, m.end(), m.start() + MAX_BLOCK)
            close = buf.find(b"-----", end + len(END), end + len(END) + 64) if end >= 0 else -1
            if close < 0 and not final and len(buf) - m.start() < MAX_BLOCK:
                self._buf = buf[m.start() :]  # the block may go on in the next feed
                return
            if close >= 0:
                found = key_kind(m.group(1).decode(), buf[m.start() : close + 5])
                if found:
                    self._report(*found)
                    pos = close + 5
                    continue
            pos = m.end()
        self._buf = buf[max(pos, len(buf) - 64) :]  # a marker cut by the block boundary

    def _attempt(self) -> bool:
        """Whether one more key-shaped structure may be loaded; past `MAX_ATTEMPTS` in one file the
        file is reported instead (fail closed: a file full of them could hide a key among them)."""
        self._attempts += 1
        if self._attempts == MAX_ATTEMPTS + 1:
            self.found.append(f"more than {MAX_ATTEMPTS} key-shaped structures, not all checked")
        return self._attempts <= MAX_ATTEMPTS

    def _scan_der(self, window: bytes) -> None:
        at = self._pos - len(self._tail)  # where `window` starts in the file
        for m in DER_KEY.finditer(window):
            if at + m.start() + MAX_DER + 4 <= self._pos:
                continue  # whole in the window before: looked at there
            size = _der_length(window, m.start())
            if at + m.start() < self._der_end or size is None or m.start() + size > len(window):
                continue  # inside a key reported (PKCS#8 wraps PKCS#1), or whole in the next window
            if not self._attempt():
                return
            der = window[m.start() : m.start() + size]
            if (kind := der_kind(der)) is not None:
                self._report(f"{kind} (DER)", der)
                self._der_end = at + m.start() + size

    def _scan_base64(self, window: bytes) -> None:
        at = self._pos - len(self._tail)
        for m in B64_KEY.finditer(window):
            if self._attempts > MAX_ATTEMPTS:
                return
            if at + m.start() + 2 * MAX_B64 <= self._pos:
                continue  # whole in the window before: looked at there
            head = base64.b64decode(m.group())
            size = _der_length(head, 0) if DER_KEY.match(head) else None
            if size is None or not self._attempt():
                continue
            need = -(-size // 3) * 4  # the base64 characters of `size` bytes
            chars = _unbroken(window[m.start() : m.start() + 2 * need])[:need]  # line breaks in between
            if len(chars) < need or chars.translate(None, B64_CHARS):
                continue  # not that many base64 characters in a row: no key of that size starts here
            der = base64.b64decode(chars[: len(chars) // 4 * 4])[:size]
            if len(der) == size and (kind := der_kind(der)):
                self._report(f"{kind} (base64 DER)", der)

    def _feed_halves(self, window: bytes, at: int) -> None:
        """UTF-16 text: the bytes at even and at odd positions, each its own stream of ASCII text,
        once the file shows UTF-16 text (then from the window before, which the key may start in)."""
        if self._halves is None:
            if UTF16_DASHES not in window and not UTF16_BASE64.search(window):
                return
            self._halves = (KeyScanner(False, self._seen), KeyScanner(False, self._seen))
            data = window
        else:
            data, at = window[len(self._tail) :], self._pos
        self._halves[0].feed(data[at % 2 :: 2])
        self._halves[1].feed(data[1 - at % 2 :: 2])


def scan_stream(f: IO[bytes], limit: int | None = None, seen: set[bytes] | None = None) -> list[str]:
    """The private keys in a stream's bytes (its first `limit` bytes when given); keys whose
    digests are in `seen` (found in another encoding of the same file) are not reported again."""
    scanner = KeyScanner(seen=seen)
    feed_stream(f, scanner, limit)
    return scanner.close()


def feed_stream(f: IO[bytes], scanner: KeyScanner, limit: int | None = None) -> None:
    """Feed a stream's bytes (its first `limit` bytes when given) to `scanner`, a block at a time."""
    left = limit
    while left is None or left > 0:
        block = f.read(BLOCK if left is None else min(BLOCK, left))
        if not block:
            break
        if left is not None:
            left -= len(block)
        scanner.feed(block)


def scan_zip(f: IO[bytes], depth: int = 1, seen: set[bytes] | None = None) -> list[str]:
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
                kinds = scan_stream(member, budget, seen)
                budget -= info.file_size
                if depth > 0 and info.file_size <= NESTED_MAX:
                    member.seek(0)
                    if member.read(4) == b"PK\x03\x04":
                        kinds += scan_zip(member, depth - 1, seen)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            continue  # an encrypted or damaged member: its raw bytes were scanned with the archive
        found += [f"{info.filename}: {k}" for k in kinds]
    return found


DECOMPRESSORS: dict[bytes, tuple[str, Callable[[IO[bytes]], IO[bytes]]]] = {
    b"\x1f\x8b": ("gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    b"\xfd7zXZ\x00": ("xz", lzma.LZMAFile),
    b"BZh": ("bzip2", bz2.BZ2File),
}
DAMAGED = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


def scan_compressed(f: IO[bytes], seen: set[bytes] | None = None) -> list[str]:
    """The private keys in a gzip, xz or bzip2 file's decompressed bytes (streams one after another
    included), as `gzip: kind`; [] when `f` is none of them. At most `COMPRESSED_MAX_BYTES` are
    looked at, a block at a time: a bomb costs time up to that budget, never memory. A damaged
    stream counts for what was decompressed before the damage."""
    f.seek(0)
    magic = f.read(6)
    found = next(((name, open_) for m, (name, open_) in DECOMPRESSORS.items() if magic.startswith(m)), None)
    if found is None:
        return []
    name, open_ = found
    f.seek(0)
    scanner = KeyScanner(seen=seen)
    with contextlib.suppress(*DAMAGED), open_(f) as stream:
        feed_stream(stream, scanner, COMPRESSED_MAX_BYTES)
    return [f"{name}: {kind}" for kind in scanner.close()]
