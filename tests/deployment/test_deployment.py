"""The Lambda handler on real API Gateway events, and worker processes on loopback."""

import json

import httpx
import pytest

from mlinfra_kit.deployment import (
    LAMBDA_LIMITS,
    api_gateway_v1_event,
    api_gateway_v2_event,
    make_handler,
    measure_cold_start,
    run_workers,
)

PROJECT = {"title": "Real-time object detection", "description": "YOLO on a webcam"}


@pytest.fixture(scope="module")
def handler(artifact):
    return make_handler(artifact)


@pytest.mark.parametrize("event", [api_gateway_v2_event, api_gateway_v1_event])
def test_every_route_answers_real_event_payloads(handler, event):
    answer = handler(event("POST", "/predict", PROJECT), None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["model_version"] == "v1"
    batch = handler(event("POST", "/predict/batch", {"projects": [PROJECT, PROJECT]}), None)
    assert len(json.loads(batch["body"])["predictions"]) == 2
    for path in ("/health", "/ready", "/metadata"):
        assert handler(event("GET", path), None)["statusCode"] == 200
    # No store in a function: a stored prediction is a clear 404.
    assert handler(event("GET", "/predictions/1"), None)["statusCode"] == 404


@pytest.mark.parametrize("event", [api_gateway_v2_event, api_gateway_v1_event])
def test_bad_input_is_passed_through_or_refused(handler, event):
    bad = handler(event("POST", "/predict", {"title": ""}), None)
    assert bad["statusCode"] == 422 and "title" in bad["body"]
    assert handler(event("GET", "/no-such-route"), None)["statusCode"] == 404
    huge = "x" * (LAMBDA_LIMITS["sync_payload_bytes"] + 1)
    too_big = handler(event("POST", "/predict", huge), None)
    assert too_big["statusCode"] == 413 and "payload limit" in too_big["body"]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_cold_start_is_measured_in_a_fresh_process(artifact, quantize):
    timing = measure_cold_start(artifact, warm_calls=5, quantize=quantize)
    assert timing["status"] == 200 and timing["cold_s"] > 0 and len(timing["warm_s"]) == 5
    assert max(timing["warm_s"]) < timing["cold_s"]


def test_workers_serve_from_separate_processes(artifact):
    with run_workers(artifact, workers=2) as pool:
        assert len(pool.worker_pids) == 2 and pool.master_pid not in pool.worker_pids
        assert all(mb > 10 for mb in pool.rss_mb().values())
        pids = {
            httpx.get(pool.url + "/health", headers={"connection": "close"}).json()["pid"]
            for _ in range(40)
        }
        assert pids <= set(pool.worker_pids)
        assert httpx.post(pool.url + "/predict", json=PROJECT).status_code == 200


def test_bad_worker_settings(tmp_path, artifact):
    with pytest.raises(ValueError, match="at least 1"), run_workers(artifact, workers=0):
        pass
    with pytest.raises(ValueError, match="not a model artifact"), run_workers(tmp_path):
        pass


def test_handler_works_where_an_event_loop_already_runs(handler):
    import asyncio

    async def inside_a_loop():  # as in a notebook
        return handler(api_gateway_v2_event("POST", "/predict", PROJECT), None)

    assert asyncio.run(inside_a_loop())["statusCode"] == 200


def test_handler_refuses_a_broken_artifact(tmp_path):
    (tmp_path / "metadata.json").write_text("{}")
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot serve"):
        make_handler(tmp_path)
