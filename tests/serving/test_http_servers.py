"""The same apps on Granian: uvicorn's answers and errors, and a process that stops whole."""

import httpx
import pytest
from helpers import require_module

from mlinfra_kit.serving import run_server, run_trivial_server

require_module("granian", "pip install 'mlinfra-kit[peers]'")

BODIES = [
    {"title": "Transformers for text", "description": "attention and language models"},
    {"title": "Object detection", "description": "YOLO on webcam images"},
]


def test_the_kit_on_granian_answers_as_on_uvicorn(artifact):
    answers = {}
    for http in ("uvicorn", "granian"):
        with (
            run_server(artifact, http=http) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            answers[http] = [client.post("/predict", json=body).json() for body in BODIES]
            bad = client.post("/predict", json={"title": 3})
            answers[http].append((bad.status_code, bad.json()["detail"][0]["loc"]))
        assert server.process.poll() is not None, f"the {http} server outlived its block"
    assert answers["granian"] == answers["uvicorn"]
    assert answers["granian"][-1] == (422, ["body", "title"])


def test_the_no_work_endpoint_on_granian():
    with run_trivial_server(http="granian") as server:
        answer = httpx.post(server.url + "/predict", json={"title": "x"}).json()
    assert answer["model_version"] == "none"
    assert server.process.poll() is not None


def test_an_unknown_http_server_is_named():
    unknown = "http must be one of uvicorn, granian, got 'hypercorn'"
    with pytest.raises(ValueError, match=unknown), run_trivial_server(http="hypercorn"):
        pass
