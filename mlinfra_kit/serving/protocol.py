"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn times out idle keep-alive connections but not a client that opens a connection and
sends its request line and headers slowly, or never finishes them (a "slowloris"): each
such connection is held until the client gives up, and a server can be filled with them.
:class:`HeaderTimeoutProtocol` gives every request ``timeout_keep_alive`` seconds (the
server's ``keep_alive_s``) from its first byte (or from the connection, for the first one)
to complete its headers, and closes the connection otherwise. The body has its own
deadline in the app (``body_timeout_s``, answered 408).

On shutdown it also gives an idle keep-alive connection :data:`SHUTDOWN_GRACE_S` before
closing it: a request the client wrote just before the signal, not read yet, is then
answered (and the connection closed after it) instead of being cut off unanswered.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["SHUTDOWN_GRACE_S", "HeaderTimeoutProtocol"]

#: How long an idle connection stays open after shutdown begins, for a request in transit.
SHUTDOWN_GRACE_S = 0.25


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that closes a connection whose request headers are not
    complete within ``timeout_keep_alive`` seconds."""

    _headers_deadline: asyncio.TimerHandle | None = None
    _shutting_down = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._headers_deadline is None:
            self._arm_headers_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_headers_deadline()
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
