"""The kit's features as Apache Beam pipelines on Beam's local runner: the batch job equals
the kit's batch features; the streaming job's sliding windows, with a watermark and allowed
lateness, equal the kit's features of each window over the events Beam keeps, late ones
included, too-late ones dropped."""

import random

import pytest
from helpers import require_module

require_module("apache_beam", "pip install 'mlinfra-kit[streams]'")

from mlinfra_kit.processing import batch_features, simulate_events  # noqa: E402
from mlinfra_kit.processing.beam import (  # noqa: E402
    beam_batch_features,
    beam_window_features,
    final_panes,
    window_reference,
)

META = ("user", "start", "end", "timing")


@pytest.fixture(scope="module")
def log():
    return simulate_events(n_users=4, duration_s=2 * 3600, seed=5)


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_the_batch_pipeline_equals_the_kits_batch_job(log, share):
    at = log.events[int(share * (len(log.events) - 1))].event_time
    features, run = beam_batch_features(log.events, at)
    assert features == batch_features(log.events, at)
    assert run.events == len(log.events) and run.seconds > 0


def test_the_streaming_pipeline_keeps_late_events_within_the_lateness_and_drops_the_rest(log):
    rng = random.Random(1)  # one event in eight arrives up to 10 minutes late
    arrivals = sorted(
        log.events,
        key=lambda e: e.event_time + (rng.uniform(30, 600) if rng.random() < 0.125 else 0),
    )
    run = beam_window_features(arrivals, window_s=300, period_s=60, allowed_lateness_s=60)
    reference, dropped = window_reference(arrivals, 300, 60, 60)
    panes = final_panes(run.rows)
    assert {
        k: {f: v for f, v in row.items() if f not in META} for k, row in panes.items()
    } == reference
    timings = {row["timing"] for row in run.rows}
    assert timings == {"ON_TIME", "LATE"} and dropped > 0  # late panes fired; too-late dropped


def test_in_order_arrivals_need_no_late_pane(log):
    run = beam_window_features(list(log.events), window_s=600, period_s=300)
    assert {row["timing"] for row in run.rows} == {"ON_TIME"}
    reference, dropped = window_reference(list(log.events), 600, 300)
    assert dropped == 0 and len(final_panes(run.rows)) == len(reference)


def test_bad_settings_are_refused(log):
    with pytest.raises(ValueError, match="must be positive"):
        beam_window_features(log.events, window_s=0)


def test_a_job_leaves_no_temporary_folder_behind(log, tmp_path, monkeypatch):
    """Beam makes a folder per pipeline it builds (one more for the copy it runs) and, in
    IPython, removes none: each of a notebook's jobs left one or two in the system's
    temporary folder. Here that folder is ``tmp_path``, Beam is told it runs in IPython (the
    one condition it checks before removing them), and the folder stays empty."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("apache_beam.pipeline.is_in_ipython", lambda: True)
    beam_batch_features(log.events, log.events[-1].event_time)
    assert list(tmp_path.iterdir()) == []
