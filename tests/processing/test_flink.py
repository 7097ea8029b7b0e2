"""The kit's window features on Apache Flink (PyFlink, a local mini-cluster, in its own
environment): Flink SQL's HOP windows give the kit's features of every window."""

import shutil

import pytest
from helpers import skip_unless_ci

from mlinfra_kit.processing import simulate_events
from mlinfra_kit.processing.beam import window_reference
from mlinfra_kit.processing.flink import flink_window_features, to_milliseconds


@pytest.fixture(scope="module")
def java():
    if shutil.which("java") is None:
        skip_unless_ci("Flink needs Java 11 or newer: apt-get install default-jre-headless")


@pytest.mark.slow
def test_flinks_sliding_windows_equal_the_kits(java):
    events = to_milliseconds(simulate_events(n_users=4, duration_s=2 * 3600, seed=5).events)
    run = flink_window_features(events, window_s=300, slide_s=60, out_of_orderness_s=60)
    reference, dropped = window_reference(events, 300, 60, allowed_lateness_s=60)
    meta = ("user", "start", "end")
    got = {(r["user"], r["end"]): {k: v for k, v in r.items() if k not in meta} for r in run.rows}
    assert dropped == 0 and got == reference  # in order: nothing late, every window equal
    assert all(r["end"] - r["start"] == 300 for r in run.rows)


def test_bad_windows_are_refused_before_flink_starts():
    with pytest.raises(ValueError, match="must be positive"):
        flink_window_features([], window_s=0)
