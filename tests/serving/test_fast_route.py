"""The fast route: ``POST /predict`` answered before FastAPI's routing, word for word what
the route answers, and every request it cannot answer handed on with its body intact (the
metrics still count its answers under the route: ``test_metrics``)."""

import asyncio
import json

import httpx
import pytest

from mlinfra_kit.services import together
from mlinfra_kit.serving import run_server, run_trivial_server
from mlinfra_kit.serving.middleware import FastRoute

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "headers": []}


def drive(middleware, scope, chunks):
    """One request through ``middleware``: what the app behind it received, what was sent,
    and the request's scope afterwards."""
    seen, sent, scope = {}, [], dict(scope)
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def app(scope, receive, send):
        seen["body"] = (await receive())["body"]
        await send({"type": "http.response.start", "status": 422, "headers": []})
        await send({"type": "http.response.body", "body": b"from the route"})

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    middleware.app = app
    asyncio.run(middleware(scope, receive, send))
    return seen, sent, scope


async def answer_valid(body):
    return b'{"tag": "cv"}' if body.startswith(b"{") else None


def test_a_body_it_can_answer_is_answered_without_the_app():
    route = object()
    seen, sent, scope = drive(
        FastRoute(None, "/predict", answer_valid, route), SCOPE, [b'{"ti', b"tle"]
    )
    assert not seen  # the app never ran
    assert scope["route"] is route  # as the router would set it: the metrics read it
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"tag": "cv"}'
    assert dict(sent[0]["headers"])[b"content-length"] == b"13"


def test_a_body_it_cannot_answer_reaches_the_route_whole():
    seen, sent, _ = drive(FastRoute(None, "/predict", answer_valid), SCOPE, [b"not ", b"json"])
    assert seen["body"] == b"not json" and sent[1]["body"] == b"from the route"


@pytest.mark.parametrize("other", [{"path": "/predict/batch"}, {"method": "PUT"}])
def test_other_paths_and_methods_go_straight_to_the_app(other):
    called = []

    async def never(body):
        called.append(body)
        return b"{}"

    seen, _, _ = drive(FastRoute(None, "/predict", never), {**SCOPE, **other}, [b"{}"])
    assert seen["body"] == b"{}" and not called


BODIES = [
    {"title": "Real-time object detection", "description": "YOLO on a webcam"},
    {"title": "BERT for support tickets"},
    {"title": ""},  # 422: too short
    {"description": "no title"},  # 422: missing
    {"title": "x" * 200},  # 422: over max_text_chars
    {"title": 5},  # 422: not a string
]


@pytest.fixture(scope="module")
def servers(artifact):
    settings = {"max_text_chars": 100, "max_wait_ms": 5}
    with together(
        run_server(artifact, fast_route=True, **settings),
        run_server(artifact, fast_route=False, **settings),
    ) as both:
        yield both


def test_it_answers_what_the_route_answers(servers):
    raw = [json.dumps(b).encode() for b in BODIES] + [b"{not json", b"", b"[1, 2]"]
    answers = []
    for server in servers:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            got = [
                client.post("/predict", content=r, headers={"content-type": "application/json"})
                for r in raw
            ]
        answers.append([(a.status_code, a.headers["content-type"], a.content) for a in got])
    fast, routed = answers
    assert fast == routed
    assert [s for s, _, _ in fast] == [200, 200] + [422] * 7


def test_the_no_work_endpoint_answers_the_same_on_either_path():
    with together(run_trivial_server(), run_trivial_server(fast_route=True)) as servers:
        answers = [
            httpx.post(s.url + "/predict", json={"title": "YOLO"}, timeout=30) for s in servers
        ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].content == answers[1].content
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
