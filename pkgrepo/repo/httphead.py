"""An HTTP/1.x request head read from an asyncio stream, bounded as hostile input.

The request line is at most 64 KiB (414 past it), the header section at most
32 KiB and 100 lines (431 past either), anything that is not
`METHOD TARGET HTTP/1.x` is a 400 and HTTP/2 or later a 505. The caller bounds
the time the whole head may take.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from http import HTTPStatus

LINE_MAX = 65536  # as http.server: a longer request line is 414
HEADERS_MAX = 32 * 1024  # the header section in all (nginx: 4 buffers of 8 KiB)
HEADERS_COUNT = 100  # as http.client
VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class BadHead(Exception):
    """A request head we answer with `status` and then close the connection."""

    def __init__(self, status: HTTPStatus):
        super().__init__(status.phrase)
        self.status = status


@dataclass
class Head:
    method: str
    target: str
    version: tuple[int, int]
    headers: dict[str, str]  # lower-case names; a repeated field's values joined with ", "

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked to keep it.

        A request that carries a body we do not read closes the connection after the answer."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.headers.get("transfer-encoding") or self.headers.get("content-length", "0") != "0":
            return False
        return "keep-alive" in tokens if self.version < (1, 1) else "close" not in tokens


async def _line(reader: asyncio.StreamReader, too_long: HTTPStatus) -> bytes:
    """One line with its CRLF (the reader's limit is LINE_MAX); b"" at a clean end of stream."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadHead(too_long) from None
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise BadHead(HTTPStatus.BAD_REQUEST) from None
        return b""


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next request head on the connection; None when the client closed it between requests."""
    line = b"\r\n"
    while line in (b"\r\n", b"\n"):  # RFC 9112: ignore empty lines before a request line
        line = await _line(reader, HTTPStatus.REQUEST_URI_TOO_LONG)
        if not line:
            return None
    words = line.decode("iso-8859-1").rstrip("\r\n").split()
    if len(words) != 3 or not TOKEN.match(words[0]):
        raise BadHead(HTTPStatus.BAD_REQUEST)
    method, target, version = words
    m = VERSION.match(version)
    if m is None:
        raise BadHead(HTTPStatus.BAD_REQUEST)
    if int(m.group(1)) != 1:
        raise BadHead(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    headers: dict[str, str] = {}
    size = 0
    for count in range(HEADERS_COUNT + 1):
        line = await _line(reader, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        if not line:
            raise BadHead(HTTPStatus.BAD_REQUEST)  # the stream ended inside the head
        if line in (b"\r\n", b"\n"):
            return Head(method, target, (int(m.group(1)), int(m.group(2))), headers)
        size += len(line)
        if count == HEADERS_COUNT or size > HEADERS_MAX:
            break
        name, colon, value = line.decode("iso-8859-1").partition(":")
        if not colon or not TOKEN.match(name):  # RFC 9112: no space before the colon, no obs-fold
            raise BadHead(HTTPStatus.BAD_REQUEST)
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise BadHead(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
