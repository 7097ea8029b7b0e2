"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn times out idle keep-alive connections but not a client that opens a connection and
sends its request line and headers slowly, or never finishes them (a "slowloris"): each
such connection is held until the client gives up, and a server can be filled with them.
:class:`HeaderTimeoutProtocol` gives every request ``timeout_keep_alive`` seconds (the
server's ``keep_alive_s``) from its first byte (or from the connection, for the first one)
to complete its headers, and closes the connection otherwise. The body has its own
deadline in the app (``body_timeout_s``, answered 408).

It also bounds what one request's head may hold: more header lines than the server's
``max_headers`` or bytes of them than ``max_header_bytes`` get a 431, a target URL over
``max_url_bytes`` a 414, and the connection is closed without reading further (a million
``a: b`` lines would otherwise all be kept in memory before the app saw the request). uvicorn
builds the protocol from its own settings, so the limits are read from the
:class:`~mlinfra_kit.serving.config.ServerConfig` in the process's environment
(:data:`~mlinfra_kit.serving.config.CONFIG_ENV`, set by every way of starting the server),
else its defaults (:data:`MAX_HEADERS`, :data:`MAX_HEADER_BYTES`, :data:`MAX_URL_BYTES`).

On shutdown it also gives an idle keep-alive connection :data:`SHUTDOWN_GRACE_S` before
closing it: a request the client wrote just before the signal, not read yet, is then
answered (and the connection closed after it) instead of being cut off unanswered.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlinfra_kit.serving.config import CONFIG_ENV, ServerConfig

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_URL_BYTES",
    "SHUTDOWN_GRACE_S",
    "HeaderTimeoutProtocol",
    "head_limits",
]

#: How long an idle connection stays open after shutdown begins, for a request in transit.
SHUTDOWN_GRACE_S = 0.25
#: The head limits of a server started without a config in its environment: the
#: defaults of the ServerConfig fields max_headers, max_header_bytes and max_url_bytes.
MAX_HEADERS: int = ServerConfig.max_headers
MAX_HEADER_BYTES: int = ServerConfig.max_header_bytes
MAX_URL_BYTES: int = ServerConfig.max_url_bytes
#: How long a refused connection is read (and dropped) before it is closed.
LINGER_S = 1.0


@functools.lru_cache(maxsize=4)
def head_limits(raw_config: str | None) -> tuple[int, int, int]:
    """``(max_headers, max_header_bytes, max_url_bytes)`` of a server config in its JSON form
    (the value of ``CONFIG_ENV``), the defaults for ``None``."""
    config = json.loads(raw_config) if raw_config else {}
    return (
        int(config.get("max_headers", MAX_HEADERS)),
        int(config.get("max_header_bytes", MAX_HEADER_BYTES)),
        int(config.get("max_url_bytes", MAX_URL_BYTES)),
    )


def _refusal(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that closes a connection whose request headers are not
    complete within ``timeout_keep_alive`` seconds."""

    _headers_deadline: asyncio.TimerHandle | None = None
    _shutting_down = False
    _refused = False
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._max_headers, self._max_head_bytes, self._max_url_bytes = head_limits(
            os.environ.get(CONFIG_ENV)
        )
        self._arm_headers_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._headers_deadline is None:
            self._arm_headers_deadline()

    # -- limits on the request's head: once refused, the rest of the connection is ignored
    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        super().on_url(url)
        if len(self.url) > self._max_url_bytes:
            self._refuse(
                414, "URI Too Long", f"the request target is over {self._max_url_bytes} bytes"
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_bytes += len(name) + len(value)
        if len(self.headers) >= self._max_headers or self._head_bytes > self._max_head_bytes:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"send at most {self._max_headers} header lines and {self._max_head_bytes} "
                "bytes of them",
            )
            return
        super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._refused = True
        self.headers.clear()  # free what was kept so far
        self._disarm_headers_deadline()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, detail))
            # A lingering close: stop writing, read and drop what the client still sends for
            # a moment, then close. Closing at once with unread data resets the connection,
            # and the client may lose the answer before it reads it.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    def on_headers_complete(self) -> None:
        self._disarm_headers_deadline()
        if self._refused:
            return
        super().on_headers_complete()
        if self._shutting_down and self.cycle is not None:
            self.cycle.keep_alive = False  # answer it, then close

    def shutdown(self) -> None:
        self._shutting_down = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(SHUTDOWN_GRACE_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_headers_deadline()
        super().connection_lost(exc)

    def _arm_headers_deadline(self) -> None:
        self._headers_deadline = self.loop.call_later(self.timeout_keep_alive, self._too_slow)

    def _disarm_headers_deadline(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _too_slow(self) -> None:
        self._headers_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
