"""Reading a request body within the server's limit: plain, or compressed with ``Content-Encoding: gzip`` or
``deflate`` (tritonclient's ``request_compression_algorithm``), where the limit applies to the inflated
bytes, so that a small compressed body cannot expand past it."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from starlette.requests import Request

from torchzoo.serve_cli.server.protocol import ProtocolError

#: a body up to this many times the limit is read and dropped after the 413, so that a client still sending
#: sees the answer rather than a reset connection; a body declared larger is refused before any of it is read
DRAIN_FACTOR = 4
#: zlib's wbits: gzip framing; zlib framing (RFC 9110's "deflate"); raw deflate, which some clients send
_GZIP, _ZLIB, _RAW = zlib.MAX_WBITS | 16, zlib.MAX_WBITS, -zlib.MAX_WBITS
ENCODINGS = {"identity": None, "gzip": _GZIP, "x-gzip": _GZIP, "deflate": _ZLIB}


class BodyTooLarge(ProtocolError):
    def __init__(self, limit: int, inflated: bool = False) -> None:
        what = "inflated request body" if inflated else "request body"
        super().__init__(f"{what} over {limit:,} bytes", 413)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body (inflated when it is compressed), or a 413 past ``limit`` bytes, a 415 for an encoding
    this server does not read, a 400 for a compressed body that does not inflate."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in ENCODINGS:
        raise ProtocolError(f"Content-Encoding {encoding[:40]!r} is not read here; send identity, gzip or deflate", 415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_FACTOR * limit:
        raise BodyTooLarge(limit)
    wbits = ENCODINGS[encoding]
    if wbits is None:
        return await _read_plain(request.stream(), limit)
    return await _inflate(request.stream(), limit, wbits, encoding)


async def _read_plain(stream: AsyncIterator[bytes], limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > DRAIN_FACTOR * limit:
            raise BodyTooLarge(limit)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise BodyTooLarge(limit)
    return b"".join(chunks)


def _is_zlib_header(head: bytes) -> bool:
    """RFC 1950's two-byte header: the deflate method, and a check making the pair a multiple of 31."""
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


async def _inflate(stream: AsyncIterator[bytes], limit: int, wbits: int, encoding: str) -> bytes:
    """Inflate chunk by chunk, never producing more than ``limit + 1`` bytes in all (zlib's ``max_length``).
    RFC 9110's deflate is zlib-framed; a body that starts without a zlib header is read as raw deflate."""
    inflater: zlib._Decompress | None = None
    head = b""  # the first bytes, held until the framing is known
    chunks: list[bytes] = []
    size = received = 0

    def feed(data: bytes) -> None:
        nonlocal size
        out = inflater.decompress(data, limit + 1 - size)  # type: ignore[union-attr]
        size += len(out)
        if size > limit or inflater.unconsumed_tail:  # type: ignore[union-attr]
            raise BodyTooLarge(limit, inflated=True)
        chunks.append(out)

    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(limit)
            if inflater is None:
                head += chunk
                if len(head) < 2:
                    continue
                inflater = zlib.decompressobj(_RAW if wbits == _ZLIB and not _is_zlib_header(head) else wbits)
                chunk = head
            feed(chunk)
        if inflater is None:
            if head:
                raise ProtocolError(f"the {encoding} request body is truncated")
            return b""
        tail = inflater.flush()
        size += len(tail)
        if size > limit:
            raise BodyTooLarge(limit, inflated=True)
        chunks.append(tail)
        if not inflater.eof or inflater.unused_data:
            raise ProtocolError(f"the {encoding} request body is truncated or followed by other data")
    except zlib.error:
        raise ProtocolError(f"the request body is not valid {encoding} data") from None
    return b"".join(chunks)
