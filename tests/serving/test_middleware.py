"""The body-limits middleware driven in process: one clock answers late bodies with 408
and forgets every body once it is read."""

import asyncio
import json

from mlinfra_kit.serving.middleware import BodySizeLimit

SCOPE = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}


async def echo(scope, receive, send):
    body = (await receive())["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def serve(middleware, messages):
    """Drive one request through; the answer's status and body."""
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # a client that stalls: nothing more ever comes

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(dict(SCOPE), receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_a_body_that_came_is_passed_on_and_forgotten():
    middleware = BodySizeLimit(echo, max_bytes=100, timeout_s=5, deadline_s=10)
    parts = [{"type": "http.request", "body": b"ab", "more_body": True}]
    parts.append({"type": "http.request", "body": b"c", "more_body": False})
    assert serve(middleware, parts) == (200, b"abc")
    assert not middleware._reading and not middleware._late


def test_a_stalled_body_gets_408_saying_why():
    middleware = BodySizeLimit(echo, max_bytes=100, timeout_s=0.2, deadline_s=10)
    status, body = serve(middleware, [{"type": "http.request", "body": b"a", "more_body": True}])
    assert status == 408
    assert "no more of the body came for 0.2 s" in json.loads(body)["detail"]
    assert not middleware._reading and not middleware._late


def test_the_deadline_answers_when_it_comes_before_the_stall_timeout():
    middleware = BodySizeLimit(echo, max_bytes=10**6, timeout_s=5, deadline_s=0.2)
    status, body = serve(middleware, [])
    assert status == 408 and "0.2 s after the headers" in json.loads(body)["detail"]
