"""Bounded request heads: uvicorn's httptools (llhttp) protocol with a size limit on the request line and
on the whole header section, enforced while the bytes arrive.

llhttp itself sets no limit: uvicorn appends every URL fragment to the URL, and httptools gathers a header
value until it ends, so a client could make the server buffer any amount before the app sees a request.
Here the bytes of a head are counted as they are fed to the parser; past ``MAX_HEAD_BYTES`` before the head
is complete the connection gets 431 and is closed, and a URL past ``MAX_URL_BYTES`` gets 414. Both answers
are the protocol's ``{"error": ...}`` JSON with ``connection: close``.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: the request line's target (path and query); nginx's default buffer for it is 8 KiB too
MAX_URL_BYTES = 8 * 1024
#: the request line and every header together, up to the blank line that ends them
MAX_HEAD_BYTES = 64 * 1024

_REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses an over-long URL (414) or header section (431) as it arrives."""

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def, override]
        super().connection_made(transport)
        self._in_head = True  # between requests, bytes that arrive start the next head
        self._head_bytes = 0
        self._refusal: tuple[int, str] | None = None

    def data_received(self, data: bytes) -> None:
        while data and not self.transport.is_closing():
            if self._in_head:
                room = MAX_HEAD_BYTES - self._head_bytes
                if room <= 0:
                    self._refuse(431, f"request head over {MAX_HEAD_BYTES:,} bytes")
                    return
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            super().data_received(piece)

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refusal = (414, f"request URL over {MAX_URL_BYTES:,} bytes")
            raise ValueError("URL too long")  # httptools stops parsing: send_400_response sends the refusal
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        status, message = self._refusal or (400, "invalid HTTP request")
        self._refuse(status, message)

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()
