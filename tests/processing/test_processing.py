"""Window arithmetic against brute force, idempotence, lateness, and no leakage."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlinfra_kit.processing import (
    CATEGORIES,
    Event,
    EventIndex,
    FeatureStore,
    StreamFeatures,
    batch_features,
    compute_features,
    feature_names,
    point_in_time_rows,
    simulate_events,
)

WINDOWS = (30, 120)

event_st = st.builds(
    lambda i, u, c, k, t: Event(f"e{i}", f"u{u}", c, k, float(t)),
    st.integers(0, 10**9),
    st.integers(0, 2),
    st.sampled_from(CATEGORIES),
    st.sampled_from(["view", "click"]),
    st.integers(0, 600),
)


def unique(events):
    seen, out = set(), []
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=60), st.integers(0, 40))
def test_stream_matches_brute_force_with_out_of_order_events(events, jitter):
    events = unique(events)
    rng = random.Random(len(events))
    # Deliver in time order, each event displaced by up to `jitter` seconds of disorder.
    arrival = sorted(events, key=lambda e: e.event_time + rng.uniform(0, jitter))
    stream = StreamFeatures(WINDOWS, allowed_lateness=jitter + 1)
    for e in arrival:
        stream.process(e)
    assert stream.dropped_late == 0
    at = stream.watermark
    expected = batch_features(events, at, WINDOWS)
    for user in stream.users:
        assert stream.features(user, at) == expected[user]
    assert stream.matches_batch(events)  # the same check, as the notebooks make it


def naive_features(events, at, windows):
    """The definition, written the slow and obvious way."""
    past = [e for e in events if e.event_time <= at]
    out = {}
    for w in sorted(windows):
        inside = [e for e in past if e.event_time > at - w]
        for c in CATEGORIES:
            out[f"count_{w:g}s_{c}"] = sum(e.category == c for e in inside)
        out[f"clicks_{w:g}s"] = sum(e.kind == "click" for e in inside)
        out[f"click_rate_{w:g}s"] = out[f"clicks_{w:g}s"] / len(inside) if inside else 0.0
    out["recency_s"] = at - max(e.event_time for e in past) if past else None
    counts = {c: out[f"count_{max(windows):g}s_{c}"] for c in CATEGORIES}
    out["top_category"] = max(sorted(counts), key=counts.get) if any(counts.values()) else None
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=60), st.integers(0, 700))
def test_window_arithmetic_matches_the_naive_definition(events, at):
    events = unique(events)
    assert compute_features(events, float(at), WINDOWS) == naive_features(events, at, WINDOWS)
    index = EventIndex(events, WINDOWS)
    for user in {e.user_id for e in events}:
        mine = [e for e in events if e.user_id == user]
        assert index.features(user, float(at)) == naive_features(mine, at, WINDOWS)


def test_redelivered_events_do_not_double_count():
    stream = StreamFeatures(WINDOWS)
    e = Event("e1", "u", "mlops", "click", 10.0)
    assert stream.process(e) and not stream.process(e)
    assert stream.duplicates == 1 and stream.features("u")["clicks_30s"] == 1


def test_too_late_events_are_counted_and_dropped():
    stream = StreamFeatures(WINDOWS, allowed_lateness=5)
    stream.process(Event("a", "u", "mlops", "view", 100.0))
    assert stream.process(Event("b", "u", "mlops", "view", 97.0))  # within lateness
    assert not stream.process(Event("c", "u", "mlops", "view", 90.0))
    assert stream.dropped_late == 1 and stream.features("u")["count_30s_mlops"] == 2


def test_point_in_time_rows_never_see_the_future():
    log = simulate_events(n_users=4, duration_s=1800, seed=3)
    rows = point_in_time_rows(log.events, WINDOWS)
    assert len(rows) == len(log.events)
    # The rows of events up to a cut-off are the same whether or not the log goes on.
    cutoff = log.events[len(log.events) // 2].event_time
    truncated = point_in_time_rows([e for e in log.events if e.event_time <= cutoff], WINDOWS)
    assert truncated == [r for r in rows if r["event_time"] <= cutoff]
    # And each row equals a brute-force recomputation from the user's earlier events.
    for row in rows[:: max(1, len(rows) // 50)]:
        earlier = [
            e
            for e in log.events
            if e.user_id == row["user_id"] and e.event_time < row["event_time"]
        ]
        expected = compute_features(earlier, row["event_time"], WINDOWS)
        got = dict(row["features"])
        recency, expected_recency = got.pop("recency_s"), expected.pop("recency_s")
        assert recency == expected_recency or recency == pytest.approx(expected_recency)
        assert got == expected


def test_point_in_time_rows_exclude_the_labelled_event_itself():
    rows = point_in_time_rows([Event("a", "u", "mlops", "click", 5.0)], WINDOWS)
    assert rows[0]["features"]["clicks_30s"] == 0 and rows[0]["label"] is True


def test_simulator_is_seeded_and_drifts():
    a = simulate_events(n_users=3, duration_s=7200, drift_per_hour=2, seed=5)
    b = simulate_events(n_users=3, duration_s=7200, drift_per_hour=2, seed=5)
    assert a.events == b.events
    interests = {a.interest_at("user-0", t) for t in range(0, 7200, 60)}
    assert len(interests) > 1
    clicks_on_preferred = [e for e in a.events if e.kind == "click"]
    on_pref = sum(a.interest_at(e.user_id, e.event_time) == e.category for e in clicks_on_preferred)
    assert on_pref > len(clicks_on_preferred) / 2


def test_feature_store_round_trip(tmp_path):
    with FeatureStore(tmp_path / "f.db") as store:
        features = batch_features(simulate_events(n_users=3, duration_s=600).events, 600, WINDOWS)
        assert store.put_many(features, as_of=600.0) == len(features)
        user = next(iter(features))
        assert store.get(user) == (features[user], 600.0)
        assert store.get("nobody") is None and store.count() == len(features)
    assert set(features[user]) == set(feature_names(WINDOWS))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: simulate_events(n_users=0), "n_users"),
        (lambda: simulate_events(burstiness=2), "burstiness"),
        (lambda: StreamFeatures(windows=(0,)), "windows"),
        (lambda: StreamFeatures(allowed_lateness=-1), "allowed_lateness"),
        (lambda: simulate_events(n_users=1, duration_s=60).interest_at("ghost", 0), "unknown user"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_stream_rejects_non_events_and_unknown_users():
    stream = StreamFeatures()
    with pytest.raises(TypeError, match="Event"):
        stream.process({"user_id": "u"})
    with pytest.raises(KeyError, match="no events"):
        stream.features("ghost")
