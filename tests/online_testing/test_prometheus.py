"""The canary's guardrails from Prometheus: counts parsed from recorded query results, the
histogram tests, and a real Prometheus scraping two real servers through a rollout."""

import math
import time

import httpx
import pytest
from helpers import skip_unless_ci

from mlinfra_kit.online_testing import Canary, Guardrails, Observation
from mlinfra_kit.online_testing.prometheus import (
    ArmCounts,
    PrometheusSource,
    histogram_checks,
    run_canary_with_prometheus,
)

INF = math.inf


class Recorded:
    """Query results as Prometheus' HTTP API returned them, by query."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def query(self, promql):
        self.asked.append(promql)
        return self.answers.get(promql, [])


def test_counts_are_read_from_promql_results():
    source = PrometheusSource(Recorded({}), {"baseline": "127.0.0.1:9001"})
    asked = source.queries("baseline")
    answers = {
        asked["requests"]: [{"labels": {}, "value": 120.0}],
        asked["errors"]: [{"labels": {}, "value": 3.0}],
        asked["buckets"]: [
            {"labels": {"le": "+Inf"}, "value": 120.0},
            {"labels": {"le": "0.001"}, "value": 80.0},
            {"labels": {"le": "0.0005"}, "value": 10.0},
        ],
    }
    source = PrometheusSource(Recorded(answers), {"baseline": "127.0.0.1:9001"})
    counts = source.counts("baseline")
    assert counts == ArmCounts(120, 3, ((0.5, 10), (1.0, 80), (INF, 120)))
    assert (
        'instance="127.0.0.1:9001"' in asked["requests"] and 'status=~"[^2].."' in asked["errors"]
    )
    server_errors = PrometheusSource(Recorded({}), {"baseline": "x:1"}, error_status="5..")
    assert 'status=~"5.."' in server_errors.queries("baseline")["errors"]
    assert PrometheusSource(Recorded({}), {"baseline": "x:1"}).counts("baseline").requests == 0
    scraped = {asked["scraped"]: [{"labels": {"instance": "127.0.0.1:9001"}, "value": 1.7e9}]}
    assert PrometheusSource(Recorded(scraped), {"baseline": "127.0.0.1:9001"}).scraped_at(
        "baseline"
    ) == pytest.approx(1.7e9)
    never = PrometheusSource(Recorded({}), {"baseline": "127.0.0.1:9001"})
    assert never.scraped_at("baseline") == 0.0
    with pytest.raises(TimeoutError, match="scraped no new /metrics from \\['baseline'\\]"):
        never.snapshot(after=1.0, timeout_s=0.1)
    with pytest.raises(ValueError, match="unknown variant 'candidate'"):
        source.counts("candidate")


def test_the_outputs_are_read_by_tag_and_unknown_word_bucket():
    asked = PrometheusSource(Recorded({}), {"v1": "127.0.0.1:9001"}).queries("v1")
    answers = {
        asked["tags"]: [
            {"labels": {"tag": "mlops"}, "value": 7.0},
            {"labels": {"tag": "computer-vision"}, "value": 3.0},
        ],
        asked["unknown"]: [
            {"labels": {"le": "+Inf"}, "value": 4.0},
            {"labels": {"le": "0.1"}, "value": 3.0},
            {"labels": {"le": "0.0"}, "value": 1.0},
        ],
    }
    tags, unknown = PrometheusSource(Recorded(answers), {"v1": "127.0.0.1:9001"}).outputs("v1")
    assert tags == {"mlops": 7, "computer-vision": 3}
    assert unknown == ((0.0, 1), (0.1, 3), (INF, 4))


def test_counts_since_a_snapshot():
    before = ArmCounts(10, 1, ((1.0, 8), (INF, 10)))
    after = ArmCounts(25, 1, ((1.0, 20), (INF, 25)))
    assert after - before == ArmCounts(15, 0, ((1.0, 12), (INF, 15)))
    assert (after - before).at_most(1.0) == 12
    with pytest.raises(ValueError, match=r"\+Inf"):
        ArmCounts(1, 0, ((1.0, 1),))


def test_histogram_tests_pass_an_identical_candidate_and_catch_a_broken_one():
    guard = Guardrails(max_latency_ratio=3.0)
    same = ArmCounts(100, 1, ((1.0, 90), (2.0, 99), (5.0, 100), (20.0, 100), (INF, 100)))
    checks = histogram_checks(same, same, guard, 0.01)
    assert [c.name for c in checks] == ["error_rate", "latency"]
    assert not any(c.fired for c in checks)
    failing = ArmCounts(100, 30, same.buckets)
    assert histogram_checks(same, failing, guard, 0.01)[0].fired
    # perhaps slower than the limit (x3 the baseline's p95 bucket edge), but inside the bucket
    # that holds the limit: unseen at bucket resolution
    slow_in_bucket = ArmCounts(100, 1, ((1.0, 0), (2.0, 0), (5.0, 0), (20.0, 100), (INF, 100)))
    assert not histogram_checks(same, slow_in_bucket, guard, 0.01)[1].fired
    far_slower = ArmCounts(100, 1, ((1.0, 0), (2.0, 0), (5.0, 0), (20.0, 0), (INF, 100)))
    check = histogram_checks(same, far_slower, guard, 0.01)[1]
    assert check.fired and "above the 20 ms bucket edge" in check.detail
    with pytest.raises(ValueError, match="requests from both arms"):
        histogram_checks(same, ArmCounts(0, 0, ((INF, 0),)), guard, 0.01)
    assert ArmCounts(0, 0, ()).timed == 0


@pytest.mark.parametrize("broken", [False, True], ids=["good", "failing"])
@pytest.mark.slow
def test_a_rollout_decided_from_a_real_prometheus_agrees_with_the_client(artifact, broken):
    from mlinfra_kit.services import prometheus_available, prometheus_server
    from mlinfra_kit.serving import run_server

    if not prometheus_available():
        skip_unless_ci("prometheus is not installed (apt-get install prometheus)")
    body = {"title": "Graph neural networks", "description": "message passing on molecules"}
    with (
        run_server(artifact, batching=False) as base,
        run_server(artifact, batching=False) as cand,
        prometheus_server([f"127.0.0.1:{base.port}", f"127.0.0.1:{cand.port}"]) as prom,
        httpx.Client() as http,
    ):
        urls = {"baseline": base.url, "candidate": cand.url}

        def send(variant, user):
            bad = broken and variant == "candidate" and int(user.split("-")[1]) % 3 == 0
            tic = time.perf_counter()
            answer = http.post(urls[variant] + "/predict", json={} if bad else body)
            ms = 1000 * (time.perf_counter() - tic)
            return Observation(variant, ms, answer.status_code != 200)

        source = PrometheusSource(
            prom, {"baseline": f"127.0.0.1:{base.port}", "candidate": f"127.0.0.1:{cand.port}"}
        )
        canary = Canary((0.5, 1.0), min_requests=30, guardrails=Guardrails(max_latency_ratio=10))
        canary, decisions = run_canary_with_prometheus(
            canary, (f"user-{i}" for i in range(5_000)), send, source
        )
    assert canary.status == ("rolled_back" if broken else "completed")
    assert decisions and all(d.agree for d in decisions), [d.row() for d in decisions]
    assert all(0 <= d.delay_s < 30 for d in decisions)
    if broken:
        assert decisions[-1].checks[0].name == "error_rate" and decisions[-1].checks[0].fired
