"""GET /metrics: what the server counts, read back with Prometheus' own parser."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlinfra_kit.serving import run_server
from mlinfra_kit.serving.metrics import UNKNOWN_SAMPLE

BODIES = [{"title": f"object detection with yolo, take {i}"} for i in range(20)]


def samples(url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_requests_batches_tags_and_versions(artifact):
    with run_server(artifact) as server:
        for body in BODIES:
            assert httpx.post(server.url + "/predict", json=body).status_code == 200
        batch = httpx.post(server.url + "/predict/batch", json={"projects": BODIES[:5]})
        assert batch.status_code == 200
        assert httpx.post(server.url + "/predict", json={"title": ""}).status_code == 422
        assert httpx.get(server.url + "/predictions/" + "z" * 300).status_code == 404
        assert httpx.get(server.url + "/no/such/" + "q" * 50).status_code == 404
        got = samples(server.url)
    ok = got[("mlinfra_requests_total", (("route", "/predict"), ("status", "200")))]
    assert ok == len(BODIES)
    assert got[("mlinfra_requests_total", (("route", "/predict"), ("status", "422")))] == 1
    assert got[("mlinfra_requests_total", (("route", "unmatched"), ("status", "404")))] == 1
    stored = ("mlinfra_requests_total", (("route", "/predictions/{entity_id}"), ("status", "404")))
    assert got[stored] == 1  # the template, never the raw path
    assert not any("z" * 50 in str(key) or "q" * 50 in str(key) for key in got)
    tags = sum(v for (name, _), v in got.items() if name == "mlinfra_predictions_total")
    assert tags == len(BODIES) + 5
    assert got[("mlinfra_batch_size_count", ())] >= 2  # the lone requests, then the batch
    computed = len(BODIES) + 5  # every text is new: the model computes each
    assert got[("mlinfra_unknown_word_share_count", ())] == len(range(0, computed, UNKNOWN_SAMPLE))
    assert got[("mlinfra_model_info", (("version", "v1"),))] == 1
    latency = ("mlinfra_request_seconds_count", (("route", "/predict"),))
    assert got[latency] == len(BODIES) + 1


def test_metrics_can_be_turned_off(artifact):
    with run_server(artifact, metrics=False) as server:
        assert httpx.get(server.url + "/metrics").status_code == 404
        assert httpx.post(server.url + "/predict", json=BODIES[0]).status_code == 200


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_server_and_answers_promql(artifact):
    from helpers import skip_unless_ci

    from mlinfra_kit.services import prometheus_available, prometheus_server, wait_until

    if not prometheus_available():
        skip_unless_ci("prometheus is not installed (apt-get install prometheus)")
    with run_server(artifact) as server, prometheus_server([f"127.0.0.1:{server.port}"]) as prom:
        for body in BODIES:
            httpx.post(server.url + "/predict", json=body).raise_for_status()
        answered = 'sum(mlinfra_requests_total{route="/predict", status="200"})'
        wait_until(lambda: prom.value(answered) == len(BODIES), 30, "the scrape of 20 requests")
        p99 = prom.value(
            "histogram_quantile(0.99, sum by (le) (mlinfra_request_seconds_bucket"
            '{route="/predict"}))'
        )
        assert p99 is not None and 0 < p99 <= 2.5
        assert prom.value('up{job="mlinfra"}') == 1
        with pytest.raises(ValueError, match="refused"):
            prom.query("sum(")


@pytest.mark.slow
def test_with_two_workers_any_scrape_counts_every_request_once(artifact):
    from helpers import skip_unless_ci

    from mlinfra_kit.deployment import run_workers
    from mlinfra_kit.services import prometheus_available, prometheus_server, wait_until

    if not prometheus_available():
        skip_unless_ci("prometheus is not installed (apt-get install prometheus)")
    close = {"Connection": "close"}  # a new connection each: the kernel spreads them
    with (
        run_workers(artifact, workers=2) as pool,
        prometheus_server([pool.url.removeprefix("http://")]) as prom,
    ):
        for body in BODIES * 5:
            httpx.post(pool.url + "/predict", json=body, headers=close).raise_for_status()
        scrapes = [samples(pool.url) for _ in range(6)]  # answered by either worker
        answered = 'sum(mlinfra_requests_total{route="/predict", status="200"})'
        wait_until(lambda: prom.value(answered) == len(BODIES) * 5, 30, "Prometheus' count")
    answered = ("mlinfra_requests_total", (("route", "/predict"), ("status", "200")))
    assert {got[answered] for got in scrapes} == {len(BODIES) * 5}
    pids = {got_key for got in scrapes for got_key in got if got_key[0] == "mlinfra_process_id"}
    assert len(pids) == 2  # one series per live worker
    assert {got[("mlinfra_model_info", (("version", "v1"),))] for got in scrapes} == {1}


def test_one_process_counts_requests_as_plain_numbers_read_at_scrape_time():
    """Without workers, traffic is kept in plain numbers and exposed when scraped, with
    Prometheus' bucket rule: a request counts in every bucket whose bound is >= its time."""
    from mlinfra_kit.serving.metrics import ServerMetrics

    metrics = ServerMetrics()
    for status, seconds in ((200, 0.0004), (200, 0.001), (200, 0.003), (200, 9.0), (422, 0.0001)):
        metrics.requests.labels("/predict", status).inc()
        metrics.latency.labels("/predict").observe(seconds)
    text = metrics.render().decode()
    assert 'mlinfra_requests_total{route="/predict",status="200"} 4.0' in text
    assert 'mlinfra_requests_total{route="/predict",status="422"} 1.0' in text
    assert 'mlinfra_request_seconds_bucket{le="0.0005",route="/predict"} 2.0' in text
    assert 'mlinfra_request_seconds_sum{route="/predict"} 9.0045' in text
    assert 'mlinfra_request_seconds_bucket{le="0.001",route="/predict"} 3.0' in text
    assert 'mlinfra_request_seconds_bucket{le="2.5",route="/predict"} 4.0' in text
    assert 'mlinfra_request_seconds_bucket{le="+Inf",route="/predict"} 5.0' in text
    assert 'mlinfra_request_seconds_count{route="/predict"} 5.0' in text
    assert "mlinfra_in_flight_requests 0.0" in text


def test_the_histogram_p99_lies_in_the_exact_p99s_bucket():
    """PromQL's interpolation on the server's latency buckets, against the exact p99 of the
    same requests: same bucket, off by at most its width, whatever the distribution."""
    import bisect
    import random

    from mlinfra_kit.serving.metrics import LATENCY_BUCKETS, bucket_quantile

    rng = random.Random(0)
    for mu, sigma in ((-7.5, 0.5), (-6.0, 1.0), (-4.0, 1.5)):  # 0.5 ms to tens of ms
        seconds = sorted(rng.lognormvariate(mu, sigma) for _ in range(5000))
        counts = [0] * (len(LATENCY_BUCKETS) + 1)
        for s in seconds:
            counts[bisect.bisect_left(LATENCY_BUCKETS, s)] += 1
        exact = seconds[int(0.99 * len(seconds)) - 1]
        estimate = bucket_quantile(0.99, LATENCY_BUCKETS, counts)
        bucket = bisect.bisect_left(LATENCY_BUCKETS, exact)
        assert bisect.bisect_left(LATENCY_BUCKETS, estimate) == bucket
        if bucket < len(LATENCY_BUCKETS):
            low = LATENCY_BUCKETS[bucket - 1] if bucket else 0.0
            assert abs(estimate - exact) <= LATENCY_BUCKETS[bucket] - low
