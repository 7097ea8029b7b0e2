import math
import sys
import time

import numpy as np
import pytest
import torch

from mlinfra_kit import measure


def test_latency_stats_match_numpy():
    seconds = [0.001 * v for v in [5, 1, 3, 2, 4, 10, 7, 6, 8, 9]]
    stats = measure.latency_stats(seconds)
    ms = np.array(seconds) * 1000
    assert stats.count == 10
    assert stats.mean_ms == pytest.approx(ms.mean())
    assert stats.std_ms == pytest.approx(ms.std(ddof=1))
    for q in (50, 90, 99):
        assert getattr(stats, f"p{q}_ms") == pytest.approx(np.percentile(ms, q))
    assert stats.max_ms == pytest.approx(10)
    assert set(stats.as_dict("x_")) == {
        "x_count",
        "x_mean_ms",
        "x_std_ms",
        "x_p50_ms",
        "x_p90_ms",
        "x_p99_ms",
        "x_max_ms",
    }


def test_single_timing():
    stats = measure.latency_stats([0.002])
    assert stats.std_ms == 0 and stats.p99_ms == pytest.approx(2)


@pytest.mark.parametrize("bad", [[], [-1.0], [float("nan")], [float("inf")]])
def test_latency_stats_rejects_bad_timings(bad):
    with pytest.raises(ValueError):
        measure.latency_stats(bad)


def test_throughput():
    assert measure.throughput(10, 0.5) == 20
    with pytest.raises(ValueError, match="positive duration"):
        measure.throughput(10, 0)
    with pytest.raises(ValueError, match="non-negative item count"):
        measure.throughput(-1, 1)


def test_timer_and_time_calls():
    with measure.Timer("cpu") as t:
        time.sleep(0.01)
    assert 0.009 < t.seconds < 1.0
    calls = []
    timings = measure.time_calls(lambda: calls.append(1), repeat=7, warmup=3)
    assert len(timings) == 7 and len(calls) == 10
    assert all(s >= 0 for s in timings)
    with pytest.raises(ValueError, match="repeat"):
        measure.time_calls(lambda: None, repeat=0)
    with pytest.raises(ValueError, match="warmup"):
        measure.time_calls(lambda: None, warmup=-1)


def test_model_size_counts_the_weights():
    small, big = torch.nn.Linear(10, 10), torch.nn.Linear(100, 100)
    size = measure.model_size_bytes(small)
    assert size > 110 * 4  # 110 float32 values plus the container
    assert measure.model_size_bytes(big) - measure.model_size_bytes(big.state_dict()) == 0
    assert measure.model_size_bytes(big) > 10_100 * 4 > size
    with pytest.raises(TypeError, match="torch module or a state dict"):
        measure.model_size_bytes(42)


def _current_rss_mb():
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_grows_with_allocations():
    before = measure.peak_memory_mb()
    # The peak is a high-water mark: earlier tests may have set it above today's memory,
    # so allocate enough to pass it by 150 MB.
    extra_mb = max(0.0, before - _current_rss_mb()) + 150
    block = bytearray(int(extra_mb * 1e6))
    block[::4096] = b"x" * len(block[::4096])  # touch the pages so they are resident
    after = measure.peak_memory_mb()
    assert before > 0 and after >= before + 100
    del block


def test_environment_fingerprint():
    env = measure.environment()
    for key in ("python", "torch", "torchvision", "river", "cpu", "threads", "gpu"):
        assert key in env
    assert env["torch"].startswith("2.14")
    assert env["threads"] >= 1 and env["cpu"]
    assert (env["gpu"] is None) == (not torch.cuda.is_available())


@pytest.mark.gpu
def test_timer_synchronises_cuda():
    x = torch.randn(4096, 4096, device="cuda")
    with measure.Timer("cuda") as synced:
        x @ x
    assert math.isfinite(synced.seconds) and synced.seconds > 0


def _children() -> set[int]:
    import os
    import subprocess

    done = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return {int(pid) for pid in done.stdout.split()}


def test_busy_cores_runs_spinners_and_stops_them():
    before = _children()
    with measure.busy_cores(2):
        spinning = _children() - before
        assert len(spinning) == 2
    assert not (_children() & spinning)
    with pytest.raises(ValueError, match="1 or more"), measure.busy_cores(0):
        pass
