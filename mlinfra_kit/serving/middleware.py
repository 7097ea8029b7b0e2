"""ASGI middleware in front of the server's routes: the request body's limits, and the
fast route.

A body larger than the limit, in a charset other than UTF-8, or that stalls, is answered
here (413, 415, 408) before any route reads it, and a route never waits for a body that is
not coming. :class:`FastRoute` answers the hot endpoint's valid requests itself, before the
framework's routing, and hands every other request on.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mlinfra_kit.serving.limits import excerpt

__all__ = ["BodySizeLimit", "FastRoute", "add_fast_route", "reply"]


def _charset(content_type: bytes) -> str | None:
    """The ``charset`` parameter of a Content-Type header, lowercased, if any."""
    for part in content_type.decode("latin-1").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


#: ASGI's three arguments, as this middleware uses them.
_Message = dict[str, Any]
_Scope = dict[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware for request bodies: 413 for one over ``max_bytes``, declared or
    streamed; 415 for a charset other than UTF-8 (JSON is UTF-8; another charset would be
    decoded wrongly, not rejected); 408 when the body stalls for ``timeout_s``, or has not
    all come ``deadline_s`` after the headers (one byte every few seconds must not hold a
    connection for hours)."""

    def __init__(
        self, app: Any, max_bytes: int, timeout_s: float = 30.0, deadline_s: float = 60.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        #: How often the clock looks at the bodies being read: a late body is answered at
        #: most this long after it was due.
        self.tick_s = max(0.01, min(1.0, timeout_s / 10, deadline_s / 10))
        # The bodies being read now (the reading task: when its next chunk is due, and
        # what to answer if it is late), and the late ones, cancelled by the clock.
        self._reading: dict[asyncio.Task[Any], tuple[float, str]] = {}
        self._late: dict[asyncio.Task[Any], str] = {}
        self._clock: asyncio.TimerHandle | None = None
        self._clock_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        content_type, declared = b"", None
        for name, value in scope["headers"]:  # the two it needs, without copying them all
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        charset = _charset(content_type)
        if charset not in (None, "utf-8", "utf8"):
            return await reply(
                send,
                415,
                f"charset {excerpt(charset)} is not supported: send the "
                "JSON body in UTF-8 (charset=utf-8, or none)",
            )
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        chunks: list[bytes] = []
        size, more = 0, True
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        while more:
            try:
                message = await self._next_message(receive, deadline)
            except TimeoutError as late:  # a stalled client must not hold a worker
                return await reply(send, 408, f"{late}; send the whole body at once")
            except asyncio.CancelledError:
                # The server is stopping and its grace period is over: the body will never
                # come. Say so (a 408, not the 500 and traceback a cancelled app gets), and
                # end this request's task, as the cancellation asked.
                return await reply(
                    send, 408, "the server is shutting down and the body had not all come"
                )
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._too_large(send)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _next_message(self, receive: _Receive, deadline: float) -> _Message:
        """The body's next message; ``TimeoutError`` saying why when it is late: no chunk
        for ``timeout_s``, or the body not all in by ``deadline``.

        One clock per event loop watches every body being read (a timer per body would
        cost more than the rest of the middleware: a body that has already come, the usual
        case, would pay for a timer it never needs)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None  # a request is always served by a task
        due = loop.time() + self.timeout_s
        if due <= deadline:
            self._reading[task] = (due, f"no more of the body came for {self.timeout_s:g} s")
        else:
            why = f"the body had not all come {self.deadline_s:g} s after the headers"
            self._reading[task] = (deadline, why)
        if self._clock is None or self._clock_loop is not loop:
            self._clock, self._clock_loop = loop.call_later(self.tick_s, self._tick, loop), loop
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._late:  # not the clock: the server is stopping
                raise
            why = self._late.pop(task)
            task.uncancel()
            raise TimeoutError(why) from None
        finally:
            del self._reading[task]

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the reads that are late; look again in ``tick_s`` while any is left."""
        now = loop.time()
        for task, (due, why) in list(self._reading.items()):
            if due <= now and task not in self._late and task.get_loop() is loop:
                self._late[task] = why
                task.cancel()
        self._clock = loop.call_later(self.tick_s, self._tick, loop) if self._reading else None

    async def _too_large(self, send: _Send) -> None:
        await reply(
            send,
            413,
            f"request body is larger than {self.max_bytes} bytes; send fewer or shorter projects",
        )


class FastRoute:
    """ASGI middleware that answers ``POST path`` itself: ``handler(body)`` gives the JSON
    answer's bytes, or None to let the app answer (an invalid body, a model not loaded: the
    route's own 422 or 503, word for word). Every other request goes on unchanged.

    What it skips is the framework's work per request: routing among the app's routes, the
    request object, the endpoint's wrapper and the exception layers (tens of microseconds in
    FastAPI, more than the model costs a request in a batch). ``route``: the app's route for
    ``path``, put in the scope as the router would (the metrics label requests by it).
    Inside :class:`BodySizeLimit`, so a body it reads has passed the limits."""

    def __init__(
        self,
        app: Any,
        path: str,
        handler: Callable[[bytes], Awaitable[bytes | None]],
        route: Any = None,
    ) -> None:
        self.app = app
        self.path = path
        self.handler = handler
        self.route = route

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        answer = await self.handler(body)
        if answer is None:  # the route answers, from the same body
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def add_fast_route(
    app: Any, path: str, handler: Callable[[bytes], Awaitable[bytes | None]]
) -> None:
    """Put a :class:`FastRoute` for ``POST path`` inside ``app``'s middleware added so far
    (call it before the others: each one added wraps those before it), with the app's own
    route for ``path`` (defined already) in the scope of its answers."""
    route = next(r for r in app.routes if getattr(r, "path", None) == path)
    app.add_middleware(FastRoute, path=path, handler=handler, route=route)


def _replay(body: bytes, receive: _Receive) -> _Receive:
    """A ``receive`` that gives ``body`` whole first, then whatever ``receive`` gives."""
    replayed = False

    async def replay() -> _Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def reply(send: _Send, status: int, detail: str) -> None:
    """Answer with ``{"detail": ...}`` from an ASGI middleware."""
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
