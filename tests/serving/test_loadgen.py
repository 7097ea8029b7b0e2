"""The load generator against the trivial server: real HTTP, its own process."""

import pytest

from mlinfra_kit.serving import run_trivial_server
from mlinfra_kit.serving.loadgen import Request, get_paths, post_json, run_load, run_repeated


@pytest.fixture(scope="module")
def trivial():
    with run_trivial_server() as server:
        yield server


def test_closed_loop_counts_everything(trivial):
    result = run_load(
        trivial.url,
        post_json("/predict", [{"title": "a"}, {"title": "b"}]),
        total=300,
        concurrency=8,
        warmup=20,
        progress=False,
    )
    assert result.mode == "closed" and result.requests == 300 and result.errors == 0
    assert result.status_counts == {"200": 300} and len(result.latencies_ms) == 300
    assert result.throughput_rps > 0 and result.stats.p50_ms > 0
    assert result.client_cpu_s > 0
    row = result.row(server="trivial")
    assert row["server"] == "trivial" and row["errors"] == 0


def test_repeated_runs_report_the_median_run_and_the_spread(trivial):
    repeated = run_repeated(
        trivial.url, get_paths(["/health"]), repeats=3, total=100, concurrency=4, progress=False
    )
    speeds = sorted(r.throughput_rps for r in repeated.runs)
    assert len(repeated.runs) == 3 and repeated.throughput_rps == speeds[1]
    assert repeated.throughput_range_rps == (speeds[0], speeds[2])
    row = repeated.row(server="trivial")
    assert row["repeats"] == 3 and row["throughput_min_rps"] <= row["throughput_rps"]
    assert row["errors"] == repeated.errors == 0 and row["server"] == "trivial"
    with pytest.raises(ValueError, match="repeats"):
        run_repeated(trivial.url, get_paths(["/health"]), repeats=0)


def test_open_loop_keeps_the_schedule(trivial):
    result = run_load(trivial.url, get_paths(["/health"]), total=100, rate_rps=200, progress=False)
    assert result.mode == "open" and result.errors == 0
    assert result.seconds >= 99 / 200  # the last request leaves after 0.495 s, not sooner


def test_errors_are_counted_not_raised(trivial):
    result = run_load(
        trivial.url, get_paths(["/health", "/nowhere"]), total=10, concurrency=2, progress=False
    )
    assert result.errors == 5 and result.status_counts == {"200": 5, "404": 5}
    assert len(result.latencies_ms) == 5


def test_unreachable_server_is_an_error_count():
    result = run_load(
        "http://127.0.0.1:9", get_paths(["/"]), total=3, concurrency=1, progress=False, timeout_s=2
    )
    assert result.errors == 3 and result.throughput_rps == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"requests": []}, "requests is empty"),
        ({"total": 0}, "at least 1"),
        ({"rate_rps": -1}, "rate_rps"),
    ],
)
def test_bad_settings(kwargs, message):
    args = {"requests": [Request("GET", "/")], **kwargs}
    with pytest.raises(ValueError, match=message):
        run_load("http://127.0.0.1:9", **args)


def test_zipf_indices_are_skewed_and_seeded():
    from mlinfra_kit.serving.loadgen import zipf_indices

    picks = zipf_indices(50, 2000, s=1.1, seed=3)
    assert picks == zipf_indices(50, 2000, s=1.1, seed=3)
    assert all(0 <= p < 50 for p in picks)
    assert picks.count(0) > 5 * max(picks.count(40), 1)
    assert len(set(zipf_indices(50, 2000, s=0.0, seed=3))) == 50  # s=0: uniform
    with pytest.raises(ValueError):
        zipf_indices(0, 10)
