"""Write and read package archives: a pax tar, compressed with zstd.

Layout, in this order: `.PKGINFO` (canonical JSON metadata), `.MANIFEST`
(canonical JSON list of every payload entry with its sha256), then the
payload sorted by path. Owners are root:root, mtimes are the build's
SOURCE_DATE_EPOCH and modes are normalised (directories 0755, files 0755 when
any execute bit was set, else 0644), so the same staged tree always gives the
same bytes. libarchive writes the tar; zstandard compresses it single-threaded
at a fixed level, whose output is deterministic.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import libarchive
import libarchive.ffi
import libarchive.write
import zstandard
from libarchive.entry import FileType

from pkgrepo.digest import CHUNK
from pkgrepo.errors import BadInput
from pkgrepo.package.meta import (
    FileEntry,
    FileKind,
    MetadataError,
    PackageInfo,
    canonical_json,
    manifest_from_bytes,
    manifest_to_bytes,
)

LEVEL = 19
SPOOL = 64 << 20  # tar bytes kept in memory before spilling to a temporary file
READ_BLOCK = 1 << 20  # decompressed bytes per write into the pipe
DATA_BLOCK = 1 << 16  # bytes per read of a member's data
MAX_META = 64 << 20  # largest .PKGINFO / .MANIFEST read
MAX_MEMBER = 1 << 30  # largest member `iter_members` holds in memory
PKGINFO = ".PKGINFO"
MANIFEST = ".MANIFEST"


# A tar member as read: a `FileKind`, or one of the kinds a package must not hold.
MemberKind = FileKind | Literal["hardlink", "device", "fifo", "socket"]


@dataclass(frozen=True)
class Member:
    """One tar entry as read back, before any safety check."""

    path: str
    kind: MemberKind
    mode: int  # permission bits including setuid/setgid/sticky
    size: int
    linkpath: str | None
    data: bytes


def normalised_mode(st_mode: int) -> int:
    if stat.S_ISDIR(st_mode):
        return 0o755
    if stat.S_ISLNK(st_mode):
        return 0o777
    return 0o755 if st_mode & 0o111 else 0o644


def _with_parents(paths: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for p in paths:
        out.add(p)
        parts = p.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return sorted(out)


def scan_tree(root: Path, paths: Iterable[str]) -> list[FileEntry]:
    """Manifest entries for `paths` (relative to `root`) and their parent directories."""
    entries = []
    for rel in _with_parents(paths):
        full = root / rel
        st = full.lstat()
        mode = normalised_mode(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            entries.append(FileEntry(path=rel, type="dir", mode=mode))
        elif stat.S_ISLNK(st.st_mode):
            entries.append(FileEntry(path=rel, type="symlink", mode=mode, target=os.readlink(full)))
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(full, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            entries.append(FileEntry(path=rel, type="file", mode=mode, size=st.st_size, sha256=h.hexdigest()))
        else:
            raise BadInput(f"{full}: special files (devices, fifos, sockets) cannot be packaged")
    return entries


def write_package(
    root: Path, manifest: list[FileEntry], info: PackageInfo, out: Path, level: int = LEVEL
) -> Path:
    """Write the package atomically to `out` (a temporary file renamed into place)."""
    mtime = info.build_date
    common = {"uid": 0, "gid": 0, "uname": "root", "gname": "root", "mtime": mtime}
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=0)
    try:
        # The tar is spooled first so zstd knows its size: zstd then sizes its tables to the
        # input (a small package compresses in milliseconds, not in the ~70 ms that level 19's
        # full-size tables cost), and the size goes into the frame header.
        with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:

            def sink(data: bytes) -> int:
                spool.write(data)
                return len(data)

            with libarchive.custom_writer(sink, "pax_restricted") as tar:
                for name, blob in ((PKGINFO, info.to_bytes()), (MANIFEST, manifest_bytes(manifest))):
                    tar.add_file_from_memory(name, len(blob), blob, permission=0o644, **common)
                for e in manifest:
                    if e.type == "dir":
                        tar.add_file_from_memory(
                            e.path, 0, b"", filetype=FileType.DIRECTORY, permission=e.mode, **common
                        )
                    elif e.type == "symlink":
                        _add_symlink(tar, e.path, e.target or "", common)
                    else:
                        tar.add_file_from_memory(
                            e.path, e.size, _chunks(root / e.path), permission=e.mode, **common
                        )
            size = spool.tell()
            spool.seek(0)
            with open(tmp, "wb") as raw:
                cctx.copy_stream(spool, raw, size=size)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return out


# libarchive-c's `linkpath` setter records a hard link unless a symlink target was
# already set, so symlink targets are set through libarchive's own call.
_copy_symlink = libarchive.ffi.ffi(
    "entry_copy_symlink", [libarchive.ffi.c_archive_entry_p, ctypes.c_char_p], None
)


def _add_symlink(tar: libarchive.write.ArchiveWrite, path: str, target: str, common: dict) -> None:
    entry = libarchive.ArchiveEntry(
        pathname=path, size=0, filetype=FileType.SYMBOLINK_LINK, perm=0o777, **common
    )
    _copy_symlink(entry._entry_p, target.encode())
    libarchive.ffi.write_header(tar._pointer, entry._entry_p)
    libarchive.ffi.write_finish_entry(tar._pointer)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def manifest_bytes(manifest: list[FileEntry]) -> bytes:
    return manifest_to_bytes(manifest)


def _kind(entry: libarchive.ArchiveEntry) -> str:
    if entry.isdir:
        return "dir"
    if entry.issym:
        return "symlink"
    if entry.islnk:
        return "hardlink"
    if entry.isblk or entry.ischr:
        return "device"
    if entry.isfifo:
        return "fifo"
    if entry.issock:
        return "socket"
    return "file"


class _Decompressor(threading.Thread):
    """Decompresses a package into a pipe while libarchive reads the other end.

    Both sides run in C without the GIL (zstandard's copy_stream, libarchive through
    ctypes), so decompression and tar parsing use two cores, as `zstd -dc | tar x` does.
    The pipe bounds the memory in flight: when the reader stops early (a bomb refused,
    only the metadata wanted), the writer gets EPIPE and stops decompressing.
    """

    def __init__(self, raw: BinaryIO):
        super().__init__(daemon=True)
        self.raw = raw
        self.read_fd, self.write_fd = os.pipe()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with os.fdopen(self.write_fd, "wb") as out:
                zstandard.ZstdDecompressor().copy_stream(self.raw, out, write_size=READ_BLOCK)
        except BrokenPipeError:
            pass  # the reader stopped early
        except (zstandard.ZstdError, OSError) as e:
            self.error = e


_read_data = libarchive.ffi.read_data


@dataclass(frozen=True)
class Entry:
    """One tar entry's header, read from a `PackageReader`; its data is read with `chunks`."""

    path: str
    kind: MemberKind
    mode: int  # permission bits including setuid/setgid/sticky
    size: int  # as the header declares it
    linkpath: str | None
    reader: PackageReader

    def chunks(self, limit: int) -> Iterator[bytes]:
        """The entry's data in blocks; BadInput as soon as more than `limit` bytes arrive."""
        return self.reader.data(self, limit)

    def read(self, limit: int) -> bytes:
        return b"".join(self.chunks(limit))


class PackageReader:
    """Streams the entries of a package file in archive order, with bounded memory.

    Use as a context manager; `entries()` yields each header, and an entry's data must be
    read (or skipped) before the next one. Every failure is BadInput naming the file. With
    `data`, the package is those bytes (already read from `path`, which is not opened again).
    """

    def __init__(self, path: Path, data: bytes | None = None):
        self.path = path
        self._bytes = data
        self._buf = ctypes.create_string_buffer(DATA_BLOCK)

    def __enter__(self) -> PackageReader:
        with contextlib.ExitStack() as stack:
            try:
                raw = stack.enter_context(
                    open(self.path, "rb") if self._bytes is None else io.BytesIO(self._bytes)
                )
            except OSError as e:
                raise BadInput(f"{self.path}: cannot read package: {e.strerror}") from None
            self._pump = _Decompressor(raw)
            self._pump.start()
            stack.callback(self._pump.join)
            stack.callback(os.close, self._pump.read_fd)
            try:
                self._tar = stack.enter_context(libarchive.fd_reader(self._pump.read_fd, "tar", "none"))
            except libarchive.ArchiveError as e:
                raise self._bad(e) from None
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(libarchive.ArchiveError):
            self._stack.close()

    def _bad(self, e: Exception) -> BadInput:
        reason = self._pump.error or e
        return BadInput(f"{self.path}: not a valid package archive ({reason}); rebuild or re-download it")

    def entries(self) -> Iterator[Entry]:
        it = iter(self._tar)
        while True:
            try:
                entry = next(it)
            except StopIteration:
                break
            except libarchive.ArchiveError as e:
                raise self._bad(e) from None
            path = entry.pathname
            linkpath = entry.linkpath
            for what, value in (("member name", path), ("link target", linkpath)):
                if isinstance(value, bytes):
                    raise BadInput(f"{self.path}: {what} {value!r} is not valid UTF-8; refusing the package")
            yield Entry(
                path=path,
                kind=_kind(entry),
                mode=entry.mode & 0o7777,
                size=entry.size or 0,
                linkpath=linkpath,
                reader=self,
            )
        if self._pump.error is not None:
            raise self._bad(self._pump.error)

    def data(self, entry: Entry, limit: int) -> Iterator[bytes]:
        total = 0
        while True:
            try:
                n = _read_data(self._tar._pointer, self._buf, DATA_BLOCK)
            except libarchive.ArchiveError as e:
                raise self._bad(e) from None
            if n == 0:
                return
            total += n
            if total > limit:
                raise BadInput(
                    f"{self.path}: member {entry.path!r} holds more than its declared {limit} "
                    "bytes; refusing the package"
                )
            yield ctypes.string_at(self._buf, n)


def iter_members(path: Path, limit: int | None = None) -> Iterator[Member]:
    """Every tar entry of a package file, in archive order, with its data held in memory
    (at most `MAX_MEMBER` bytes each): for looking inside small packages.

    Raises BadInput naming the file when it is not a readable zstd tar.
    """
    with PackageReader(path) as reader:
        for i, e in enumerate(reader.entries()):
            if limit is not None and i >= limit:
                return
            data = e.read(MAX_MEMBER) if e.kind == "file" else b""
            yield Member(e.path, e.kind, e.mode, len(data), e.linkpath, data)


def _parse_head(path: Path, entries: Iterator[Entry]) -> tuple[PackageInfo, list[FileEntry]]:
    head = [
        (e.path, e.read(MAX_META) if e.kind == "file" else b"")
        for _, e in zip(range(2), entries, strict=False)
    ]
    if [name for name, _ in head] != [PKGINFO, MANIFEST]:
        raise BadInput(
            f"{path}: package must start with {PKGINFO} and {MANIFEST}; it is not a pkgrepo package"
        )
    try:
        info = PackageInfo.from_bytes(head[0][1])
        manifest = manifest_from_bytes(head[1][1])
    except MetadataError as e:
        raise BadInput(f"{path}: malformed package metadata: {e}") from None
    return info, manifest


def read_info(path: Path) -> PackageInfo:
    """Only the metadata: stops after the first entries."""
    return read_head(path)[0]


def read_head(path: Path, data: bytes | None = None) -> tuple[PackageInfo, list[FileEntry]]:
    """Metadata and manifest of the package file `path`, or of `data` (its bytes, read once:
    the head is then that of exactly the bytes a caller hashes and keeps)."""
    with PackageReader(path, data) as reader:
        return _parse_head(path, reader.entries())


@contextlib.contextmanager
def payload(path: Path) -> Iterator[tuple[PackageInfo, list[FileEntry], Iterator[Entry]]]:
    """Metadata, manifest and the payload entries that follow, streamed (see `PackageReader`)."""
    with PackageReader(path) as reader:
        entries = reader.entries()
        yield (*_parse_head(path, entries), entries)


__all__ = [
    "Entry",
    "Member",
    "PackageReader",
    "canonical_json",
    "iter_members",
    "payload",
    "read_head",
    "read_info",
    "scan_tree",
    "write_package",
]
