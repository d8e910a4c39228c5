"""uvicorn's HTTP protocol with the two guards an ASGI app cannot give itself.

* **Header timeout**: a connection whose request line and headers are not complete within
  ``header_timeout_s`` (default 5 s) after its first byte (or after it opened) gets a 408 and is
  closed. uvicorn alone keeps a half-sent request open for as long as the client likes.
* **Connection cap**: past ``max_connections`` open connections (default 1024) a new one gets a
  503 with ``Retry-After`` and is closed (the error in the API's JSON shape; uvicorn's own
  ``limit_concurrency`` answers plain text and counts idle keep-alive connections with requests).

Body timeout, body limit, request deadline and the concurrency limit are in the app
(:class:`utils.serving.app.Guard`). Needs ``httptools`` (uvicorn's fast parser, in requirements.txt).
"""
from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULTS = {"header_timeout_s": 5.0, "max_connections": 1024}


def _raw(status: int, reason: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": message, "details": [], "request_id": "-"}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s = DEFAULTS["header_timeout_s"]
    max_connections = DEFAULTS["max_connections"]
    _header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_raw(503, "Service Unavailable", f"The server has {self.max_connections} open "
                                 f"connections already: retry in a second.", "retry-after: 1\r\n"))
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_raw(408, "Request Timeout", f"The request's headers did not arrive within "
                                      f"{self.header_timeout_s:g} s."))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def configure(header_timeout_s: float | None = None, max_connections: int | None = None):
    """Set the protocol's guards (class attributes: every connection of this process) and return the class."""
    if header_timeout_s is not None:
        if not header_timeout_s > 0:
            raise ValueError(f"header timeout must be > 0 s, not {header_timeout_s}.")
        GuardedHttpToolsProtocol.header_timeout_s = float(header_timeout_s)
    if max_connections is not None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {max_connections}.")
        GuardedHttpToolsProtocol.max_connections = int(max_connections)
    return GuardedHttpToolsProtocol
