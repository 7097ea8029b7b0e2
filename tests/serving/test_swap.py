"""Swapping the model of a running server under load, and big batches that do not
starve other requests."""

import asyncio
import json

import httpx
import pytest
from helpers import in_flight_async

from mlinfra_kit.serving import run_server, swap_under_load
from mlinfra_kit.serving.admin import is_loopback

BODIES = [{"title": f"object detection and segmentation, project {i}"} for i in range(50)]


@pytest.fixture(scope="module")
def second_artifact(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("v2") / "tag-classifier", version="v2")


@pytest.mark.slow
def test_a_swap_under_load_drops_and_mislabels_nothing(artifact, second_artifact, models_root):
    with run_server(artifact, cache_size=16, model_root=models_root) as server:
        report = swap_under_load(
            server, BODIES, second_artifact, requests=1500, concurrency=64, swap_after=0.3
        )
        assert server.get("/ready")["model_version"] == "v2"
        shown = httpx.get(server.url + "/metrics").text
        assert 'mlinfra_model_info{version="v2"} 1.0' in shown and 'version="v1"' not in shown
    assert report.failed == 0 and report.mis_versioned == 0, report
    assert (report.previous_version, report.new_version) == ("v1", "v2")
    assert report.by_version.get("v2", 0) > 0 and sum(report.by_version.values()) == 1500


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    """The folder every test artifact lies in: the management API's model root."""
    return str(tmp_path_factory.getbasetemp())


def test_the_admin_endpoint_says_what_is_wrong(artifact, models_root, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "weights.pt").write_bytes(b"not weights")
    (broken / "metadata.json").write_text("{}")
    with run_server(artifact, model_root=models_root) as server:

        def swap(path, **extra):
            return httpx.post(
                server.url + "/admin/model",
                json={"path": str(path), **extra},
                headers=server.admin_headers,
            )

        missing = swap(tmp_path / "none")
        assert missing.status_code == 404 and "no model artifact" in missing.json()["detail"]
        bad = swap(broken)
        assert bad.status_code == 409 and "cannot load" in bad.json()["detail"]
        assert server.get("/ready")["model_version"] == "v1"  # still serving the old one
        assert swap("x", force=True).status_code == 422


def test_the_model_cannot_be_swapped_without_the_token_or_from_outside_the_root(
    artifact, second_artifact, trained, tmp_path
):
    odd = trained.save(tmp_path / "odd", version="v9-<script>alert(1)</script>")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "link").symlink_to(second_artifact, target_is_directory=True)
    with run_server(artifact, model_root=str(tmp_path)) as server:
        url, good = server.url + "/admin/model", server.admin_headers
        body = {"path": str(odd)}
        assert httpx.post(url, json=body).status_code == 401
        forged = {"Authorization": "Bearer " + "x" * 32, "X-Forwarded-For": "127.0.0.1"}
        assert httpx.post(url, json=body, headers=forged).status_code == 401
        sneaky = httpx.post(url, json={"path": str(tmp_path / ".." / "v2")}, headers=good)
        assert sneaky.status_code == 403 and "outside the model folder" in sneaky.text
        linked = httpx.post(url, json={"path": str(outside / "link")}, headers=good)
        assert linked.status_code == 403  # the link resolves outside the root
        refused = httpx.post(url, json=body, headers=good)
        assert refused.status_code == 409 and "version label" in refused.json()["detail"]
        assert len(refused.content) < 2_000
        assert server.get("/ready")["model_version"] == "v1"
        shown = server.get("/metadata")["config"]
        assert shown["admin_token"] == "***" and server.admin_token not in json.dumps(shown)


def test_the_management_api_is_off_without_a_token(artifact):
    from fastapi import HTTPException
    from starlette.requests import Request

    from mlinfra_kit.serving.admin import check_admin
    from mlinfra_kit.serving.config import ServerConfig

    local = Request({"type": "http", "headers": [], "client": ("127.0.0.1", 5000)})
    with pytest.raises(HTTPException) as refused:
        check_admin(ServerConfig.of(artifact), local)
    assert refused.value.status_code == 403 and "off" in refused.value.detail


def test_a_secret_in_the_store_url_never_shows(artifact, tmp_path):
    from mlinfra_kit.serving.config import ServerConfig

    config = ServerConfig.of(
        artifact, store="redis://:s3cret-pw@127.0.0.1:1/0", admin_token="t" * 20
    )
    shown = json.dumps(config.shown())
    assert "s3cret-pw" not in shown and "t" * 20 not in shown and "t" * 20 not in repr(config)


def test_only_loopback_clients_may_swap():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.10")
    assert not is_loopback("10.0.0.1") and not is_loopback(None)
    assert not is_loopback("testclient")


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
                while await in_flight_async(client) < 1:  # until the batch is being computed
                    pass
                answered_first = 0
                while not batch.done():
                    health = await client.get("/health")
                    answered_first += health.status_code == 200 and not batch.done()
                return (await batch), answered_first

        response, health_during = asyncio.run(race())
    assert response.status_code == 200 and len(response.json()["predictions"]) == items
    assert health_during >= 2  # /health kept answering while the batch was computed
