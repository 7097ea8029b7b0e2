"""Swapping the model of a running server under load, and big batches that do not
starve other requests."""

import asyncio
import json

import httpx
import pytest

from mlinfra_kit.serving import run_server, swap_under_load
from mlinfra_kit.serving.app import _is_loopback

BODIES = [{"title": f"object detection and segmentation, project {i}"} for i in range(50)]


@pytest.fixture(scope="module")
def second_artifact(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("v2") / "tag-classifier", version="v2")


def test_a_swap_under_load_drops_and_mislabels_nothing(artifact, second_artifact):
    with run_server(artifact, cache_size=16) as server:
        report = swap_under_load(
            server.url, BODIES, second_artifact, requests=1500, concurrency=64, swap_after=0.3
        )
        assert server.get("/ready")["model_version"] == "v2"
    assert report.failed == 0 and report.mis_versioned == 0, report
    assert (report.previous_version, report.new_version) == ("v1", "v2")
    assert report.by_version.get("v2", 0) > 0 and sum(report.by_version.values()) == 1500


def test_the_admin_endpoint_says_what_is_wrong(artifact, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "weights.pt").write_bytes(b"not weights")
    (broken / "metadata.json").write_text("{}")
    with run_server(artifact) as server:
        missing = httpx.post(server.url + "/admin/model", json={"path": str(tmp_path / "none")})
        assert missing.status_code == 404 and "no model artifact" in missing.json()["detail"]
        bad = httpx.post(server.url + "/admin/model", json={"path": str(broken)})
        assert bad.status_code == 409 and "cannot load" in bad.json()["detail"]
        assert server.get("/ready")["model_version"] == "v1"  # still serving the old one
        extra = httpx.post(server.url + "/admin/model", json={"path": "x", "force": True})
        assert extra.status_code == 422


def test_only_loopback_clients_may_swap():
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.8.9.10")
    assert not _is_loopback("10.0.0.1") and not _is_loopback(None)
    assert not _is_loopback("testclient")


def test_a_huge_batch_does_not_starve_health(artifact):
    items = 20_000
    body = json.dumps({"projects": BODIES * (items // len(BODIES))}).encode()
    with run_server(artifact, max_items=items, max_body_bytes=len(body) + 1) as server:

        async def race():
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                batch = asyncio.create_task(
                    client.post(
                        "/predict/batch", content=body, headers={"content-type": "application/json"}
                    )
                )
                await asyncio.sleep(0.05)
                answered_first = 0
                while not batch.done():
                    health = await client.get("/health")
                    answered_first += health.status_code == 200 and not batch.done()
                    await asyncio.sleep(0.01)
                return (await batch), answered_first

        response, health_during = asyncio.run(race())
    assert response.status_code == 200 and len(response.json()["predictions"]) == items
    assert health_during >= 2  # /health kept answering while the batch was computed
