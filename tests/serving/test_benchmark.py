"""Two real servers compared interleaved: every round loads both, the warm-up round is not
kept, the verdict comes from the engine, and a server against its twin is never "held"
better by a clear margin."""

import pytest

from mlinfra_kit.serving import run_trivial_server
from mlinfra_kit.serving.benchmark import compare_closed_loop, compare_open_loop
from mlinfra_kit.serving.loadgen import post_json
from mlinfra_kit.serving.peers import load_profile

BODIES = post_json("/predict", [{"title": "YOLO on a webcam"}])


def test_two_twins_closed_loop_keep_every_measured_round_and_are_not_called_different():
    """Also: the comparison reads a server's CPU and memory around its own runs, and its
    row is made of those runs, with none made again."""
    with run_trivial_server() as a, run_trivial_server() as b:
        compared = compare_closed_loop(
            a.url,
            b.url,
            BODIES,
            concurrency=4,
            names=("twin a", "twin b"),
            client="python",
            total=200,
            warmup=20,
            max_rounds=3,
            pids=(a.pid, None),
            also={"p99": 1.5},
        )
        row = load_profile(
            "twin a",
            a.url,
            BODIES,
            a.pid,
            concurrencies=(4,),
            client="python",
            made={4: (compared.a, compared.usage[0])},
        )
    c = compared.comparison
    assert c.names == ("twin a", "twin b") and c.repeats == 3
    assert len(compared.a.runs) == len(compared.b.runs) == 3  # the warm-up round left out
    assert compared.errors == 0 and compared.a.throughput_rps > 0
    assert c.verdict(at_least=1.5) != "held"
    tail = compared.by("p99")  # the same runs, by another metric
    assert tail.repeats == 3 and tail.names == c.names and tail.verdict(at_least=1.5) != "held"
    with pytest.raises(ValueError, match="metric must be one of"):
        compared.by("p75")
    used, unread = compared.usage
    assert unread is None and used is not None
    assert 0 < used.cpu_cores <= 2.5 and used.rss_mb > 10  # one process, a Python server's memory
    assert row["rps_c4"] == compared.a.throughput_rps  # the comparison's own runs
    assert row["requests_c4"] == sum(r.stats.count for r in compared.a.runs) == 600
    assert (row["server_cpu_cores"], row["rss_mb"]) == (used.cpu_cores, used.rss_mb)


@pytest.mark.slow
def test_open_loop_compares_a_latency_percentile():
    with run_trivial_server() as a, run_trivial_server() as b:
        compared = compare_open_loop(
            a.url, b.url, BODIES, rate_rps=200, total=100, metric="p99", max_rounds=3
        )
    assert compared.comparison.repeats == 3 and compared.b.runs[0].rate_rps == 200


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="metric must be one of"):
        compare_open_loop(
            "http://127.0.0.1:1", "http://127.0.0.1:1", BODIES, rate_rps=1, total=1, metric="p75"
        )
    with pytest.raises(ValueError, match="also's metrics must be among"):
        compare_closed_loop(
            "http://127.0.0.1:1", "http://127.0.0.1:1", BODIES, concurrency=1, also={"p75": 1.0}
        )
