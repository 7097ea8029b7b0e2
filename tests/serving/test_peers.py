"""Other serving systems serve the kit's artifact as their users start them, answer what the
kit's model answers, and leave no process behind. Each runs in its own environment where it
pins packages the kit's server needs newer (made once, then reused)."""

import httpx
import pytest

from mlinfra_kit.measure import is_running
from mlinfra_kit.serving.metrics import read_exposition
from mlinfra_kit.serving.peers import PEERS, run_peer

#: The peers that serve no Prometheus metrics as their users start them (09 shows it).
WITHOUT_METRICS = {"litserve", "mlflow"}


@pytest.mark.parametrize("name", sorted(PEERS))
@pytest.mark.slow
def test_a_peer_serves_the_kits_answers_and_stops_whole(name, artifact, trained):
    peer = PEERS[name]
    with run_peer(peer, artifact, timeout_s=300) as running:
        assert running.cold_start_s > 0 and running.rss_mb() > 0
        group = running.tree()
        for title in ("YOLO object detection on a webcam", "Fine-tuning BERT for contracts"):
            answer = httpx.post(
                running.url + running.path, json=running.body(title, ""), timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert running.tag_of(answer.json()) == trained.predict([title])[0].tag
        exposed = read_exposition(running.metrics_url)
        if name in WITHOUT_METRICS:  # no /metrics out of the box
            assert exposed["status"] == 404 and not exposed["families"], exposed
        else:  # Prometheus' text format, with request counts or latencies among its families
            assert exposed["status"] == 200 and exposed["traffic"], exposed
    assert peer.glue_lines > 5
    alive = [pid for pid in group if is_running(pid)]
    assert not alive, f"{name} left processes behind: {alive}"


@pytest.mark.slow
def test_load_profile_sends_at_least_min_requests_at_the_top_concurrency():
    from mlinfra_kit.serving import run_trivial_server
    from mlinfra_kit.serving.loadgen import post_json
    from mlinfra_kit.serving.peers import load_profile

    with run_trivial_server() as server:
        row = load_profile(
            "no work",
            server.url,
            post_json("/predict", [{"title": "YOLO"}]),
            server.pid,
            concurrencies=(1, 8),
            repeats=1,
            seconds=0.2,
            total=200,
            warmup=10,
            min_requests=30_000,
        )
    assert row["errors"] == 0 and row["requests_c8"] >= 30_000
    assert 0 < row["requests_c1"] < 30_000  # only the top concurrency is topped up
    assert row["rps_c8"] > 0 and row["server_cpu_cores"] > 0
