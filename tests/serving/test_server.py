"""Every endpoint through a real server process on loopback, bad input included."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from mlinfra_kit.models import TagClassifier
from mlinfra_kit.services import wait_until
from mlinfra_kit.serving import SQLiteStore, predict_into_store, run_server

PROJECT = {"title": "Real-time object detection", "description": "YOLO on a webcam"}


@pytest.fixture(scope="module")
def store_url(artifact, projects, tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "predictions.db"
    with SQLiteStore(db) as store:
        predict_into_store(
            TagClassifier.load(artifact), projects.ids, projects.texts, store, progress=False
        )
    return f"sqlite:{db}"


@pytest.fixture(scope="module")
def server(artifact, store_url):
    with run_server(
        artifact, store=store_url, cache_size=16, max_items=8, max_body_bytes=20_000, max_wait_ms=20
    ) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_health_ready_metadata(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/ready").json() == {"status": "ready", "model_version": "v1"}
    meta = client.get("/metadata").json()
    assert meta["model_version"] == "v1" and len(meta["tags"]) == 4
    assert meta["config"]["max_items"] == 8 and "model_calls" in meta["batching"]


def test_predict_matches_the_model_in_process(client, artifact):
    answer = client.post("/predict", json=PROJECT).json()
    expected = TagClassifier.load(artifact).predict(
        [f"{PROJECT['title']} {PROJECT['description']}"]
    )[0]
    assert answer["tag"] == expected.tag and answer["model_version"] == "v1"
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)


def test_predict_batch_keeps_order(client):
    projects = [PROJECT, {"title": "Fine-tuning BERT for legal contracts"}]
    answer = client.post("/predict/batch", json={"projects": projects}).json()
    single = [client.post("/predict", json=p).json()["tag"] for p in projects]
    assert [p["tag"] for p in answer["predictions"]] == single


def test_stored_prediction_and_missing_id(client, projects):
    answer = client.get(f"/predictions/{projects.ids[0]}").json()
    assert answer["id"] == str(projects.ids[0]) and answer["model_version"] == "v1"
    assert answer["age_s"] >= 0
    missing = client.get("/predictions/no-such-project")
    assert missing.status_code == 404 and "POST /predict" in missing.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 42}, "title"),
        ({"description": "no title"}, "title"),
        ({"title": "ok", "description": ["not", "text"]}, "description"),
        ({"title": "ok", "titel": "typo"}, "titel"),
        ({"title": "x" * 5001}, "title"),
    ],
)
def test_bad_project_is_422_naming_the_field(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert field in [part for error in response.json()["detail"] for part in error["loc"]]


def test_bad_batches_are_422(client):
    for body in ({"projects": []}, {"projects": [PROJECT] * 9}, {"projects": PROJECT}):
        response = client.post("/predict/batch", json=body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][:2] == ["body", "projects"]


def test_malformed_json_is_422(client):
    response = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_oversized_body_is_413(client):
    big = {"title": "x", "description": "y" * 30_000}
    response = client.post("/predict", json=big)
    assert response.status_code == 413 and "larger than 20000 bytes" in response.json()["detail"]

    def chunks():  # no content-length: the limit still holds while streaming
        data = json.dumps(big).encode()
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_cache_counts_hits(client):
    before = client.get("/metadata").json()["cache"]
    project = {"title": "A cached project about pipelines"}
    for _ in range(3):
        client.post("/predict", json=project)
    after = client.get("/metadata").json()["cache"]
    assert after["hits"] - before["hits"] == 2 and after["misses"] - before["misses"] == 1


def test_concurrent_requests_are_merged_into_fewer_model_calls(server, client):
    before = client.get("/metadata").json()["batching"]

    async def burst():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            bodies = [{"title": f"project number {i} about detection"} for i in range(32)]
            return await asyncio.gather(*(c.post("/predict", json=b) for b in bodies))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    after = client.get("/metadata").json()["batching"]
    calls = after["model_calls"] - before["model_calls"]
    assert after["items"] - before["items"] == 32
    assert calls < 32 and after["largest_batch"] > 1


def test_model_that_fails_to_load_is_503_not_500(tmp_path, artifact):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.json").write_text((artifact / "metadata.json").read_text())
    (broken / "weights.pt").write_bytes(b"not a torch file")
    with run_server(broken, wait_for="/health") as running, httpx.Client(base_url=running.url) as c:
        assert c.get("/ready").status_code == 503  # loading, then failed: 503 either way
        wait_until(lambda: "failed" in c.get("/ready").json()["detail"], 60, "load failure")
        for response in (c.get("/ready"), c.post("/predict", json=PROJECT)):
            assert response.status_code == 503
            assert "failed to load" in response.json()["detail"]
        assert c.get("/health").status_code == 200


def test_unbatched_server_and_redis_store(artifact, projects, redis_url):
    from mlinfra_kit.serving import open_store

    with open_store(redis_url) as store:
        predict_into_store(
            TagClassifier.load(artifact),
            projects.ids[:10],
            projects.texts[:10],
            store,
            progress=False,
        )
    with (
        run_server(artifact, store=redis_url, batching=False) as running,
        httpx.Client(base_url=running.url) as c,
    ):
        assert c.get(f"/predictions/{projects.ids[3]}").json()["model_version"] == "v1"
        c.post("/predict", json=PROJECT)
        assert c.get("/metadata").json()["batching"]["enabled"] is False


def test_ready_waits_for_every_worker(artifact, monkeypatch):
    """One of two workers loaded: /ready says 503 with the count; both: 200."""
    from mlinfra_kit.services import wait_until
    from mlinfra_kit.serving.config import READY_DIR_ENV, workers_env

    with workers_env(2) as shared:
        for name, value in shared.items():  # as `serve --workers 2` sets for its workers
            monkeypatch.setenv(name, value)
        with run_server(artifact, wait_for="/health") as server:

            def half_ready():
                answer = httpx.get(server.url + "/ready")
                return answer.status_code == 503 and "1 of 2" in answer.json()["detail"]

            wait_until(half_ready, 60, "the first worker's readiness")
            assert httpx.get(server.url + "/v2/health/ready").status_code == 503
            Path(shared[READY_DIR_ENV], "another-worker").touch()
            assert httpx.get(server.url + "/ready").status_code == 200
            assert httpx.get(server.url + "/v2/health/ready").status_code == 200
