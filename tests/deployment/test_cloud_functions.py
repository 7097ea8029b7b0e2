"""The model as a Google Cloud Function: the kit's app behind one HTTP function, run by a
real functions-framework server on loopback, answering what `mlinfra serve` answers,
good input and bad alike."""

import json

import httpx
import pytest

from mlinfra_kit.deployment.cloud_functions import (
    deploy_command,
    measure_function,
    run_function,
)
from mlinfra_kit.serving import run_server

CASES = [
    ("POST", "/predict", {"title": "YOLO object detection on a webcam"}),
    ("POST", "/predict/batch", {"projects": [{"title": "BERT for contracts"}]}),
    ("POST", "/predict", {"titl": "a misspelt field"}),
    ("POST", "/predict", {"title": ""}),
    ("POST", "/predict", {"title": "x" * 5001}),
    ("POST", "/predict", {"title": 3}),
    ("POST", "/predict/batch", {"projects": []}),
    ("POST", "/predict", b'{"title": "' + b"a" * 1_100_000 + b'"}'),  # over the body limit
    ("POST", "/predict", b"{not json"),
    ("GET", "/health", None),
    ("GET", "/no-such-route", None),
]


def send(url: str, method: str, path: str, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    headers = {"content-type": "application/json"} if content is not None else {}
    return httpx.request(method, url + path, content=content, headers=headers, timeout=60)


def comparable(answer: httpx.Response, path: str):
    data = answer.json()
    if path == "/health":  # its own process and uptime
        return answer.status_code, sorted(data)
    return answer.status_code, data


@pytest.mark.slow
def test_the_function_answers_what_the_kits_server_answers(artifact):
    with run_server(artifact, batching=False) as server:
        expected = [comparable(send(server.url, *case), case[1]) for case in CASES]
    with run_function(artifact) as function:
        got = [comparable(send(function.url, *case), case[1]) for case in CASES]
    statuses = [status for status, _ in got]
    assert statuses == [200, 200, 422, 422, 422, 422, 422, 413, 422, 200, 404]
    assert got == expected


def test_cold_and_warm_requests_are_measured_over_http(artifact):
    measured = measure_function(artifact, warm_calls=20)
    assert measured["status"] == 200 and len(measured["warm_s"]) == 20
    assert 0 < max(measured["warm_s"]) < measured["cold_s"]
    assert measured["rss_mb"] > 50


def test_a_broken_artifact_gets_503_with_the_reason_on_every_request(tmp_path):
    with run_function(tmp_path) as function:
        for _ in range(2):  # each request tries to load again, and says why it cannot
            answer = httpx.post(function.url + "/predict", json={"title": "x"}, timeout=60)
            assert answer.status_code == 503
            assert str(tmp_path) in answer.json()["detail"]


def test_the_deploy_command_names_the_entry_point_and_the_model():
    command = deploy_command("tag-predict", region="europe-west1")
    assert command[:4] == ["gcloud", "functions", "deploy", "tag-predict"]
    assert "--entry-point=predict" in command and "--gen2" in command
    assert "--set-env-vars=MLINFRA_MODEL=model" in command


@pytest.mark.parametrize("bad", [0, -1])
def test_measure_refuses_nonsense_warm_calls(artifact, bad):
    with pytest.raises(ValueError, match="warm_calls"):
        measure_function(artifact, warm_calls=bad)
