"""Feature pipelines into real stores, and the staleness study's honesty (no leakage)."""

import itertools
import math
import tempfile

import pytest

from mlinfra_kit.processing import (
    EventIndex,
    FeatureStore,
    NextCategoryModel,
    RedisFeatureStore,
    RedisStreamSource,
    StreamFeatures,
    StreamPipeline,
    batch_refresh,
    consume,
    open_feature_store,
    point_in_time_rows,
    serve_from_batch,
    serve_from_pipeline,
    serve_from_stream,
    simulate_events,
    staleness_sweep,
)

_names = itertools.count()


@pytest.fixture(scope="module")
def log():
    return simulate_events(n_users=8, duration_s=3 * 3600, seed=4)


@pytest.mark.parametrize("micro_batch", [1, 7, 10_000])
def test_stream_pipeline_materialises_the_state(tmp_path, log, micro_batch):
    with FeatureStore(tmp_path / "f.db") as store:
        pipeline = StreamPipeline(store=store, micro_batch=micro_batch)
        report = pipeline.run(log.events)
        assert report.events == report.applied == len(log.events) == len(report.lag_s)
        assert store.count() == len(log.users) and report.events_per_s > 0
        # Every user's stored row is the state's features as of that user's last write.
        as_ofs = set()
        for user in log.users:
            features, as_of = store.get(user)
            assert features == pipeline.features.features(user, as_of)
            as_ofs.add(as_of)
    if micro_batch == 10_000:  # one write for everything: every row as of the end
        assert as_ofs == {pipeline.features.watermark}


def test_a_timer_bounds_the_wait_and_a_count_waits_for_the_batch_to_fill(tmp_path, log):
    with FeatureStore(tmp_path / "t.db") as store:
        timed = StreamPipeline(store=store, micro_batch=10_000, flush_every_s=30.0).run(log.events)
    assert len(timed.wait_s) == len(log.events) and max(timed.wait_s) <= 30.0
    assert timed.rows_written > len(log.events) / 20  # the timer wrote, not the count
    counted = StreamPipeline(micro_batch=100).run(log.events)
    # At the log's real rate, the first event of a 100-event batch waits for the other 99.
    first = log.events[99].event_time - log.events[0].event_time
    assert counted.wait_s[0] == pytest.approx(first) and first > 30.0
    assert counted.row()["freshness_p99_s"] > timed.row()["freshness_p99_s"]


def test_served_stream_features_are_read_from_the_pipelines_store(tmp_path, log):
    events = [e for e in log.events if e.event_time >= 3600]
    with FeatureStore(tmp_path / "s.db") as store:
        pipeline = StreamPipeline(store=store, micro_batch=10_000, flush_every_s=5.0)
        served, report = serve_from_pipeline(log, events, pipeline)
    assert report.events == len(log.events) and len(served.features) == len(events)
    assert min(served.ages_s) >= 0 and max(served.ages_s) <= 5.0
    assert 0 in served.ages_s  # after a quiet spell the store holds every earlier event
    with pytest.raises(ValueError, match="store"):
        serve_from_pipeline(log, events, StreamPipeline())


def test_stream_pipeline_is_idempotent_on_redelivery(tmp_path, log):
    with FeatureStore(tmp_path / "f.db") as store:
        pipeline = StreamPipeline(store=store, micro_batch=50)
        pipeline.run(log.events)
        before = {u: store.get(u) for u in log.users}
        again = pipeline.run(log.events[-100:])
        assert again.applied == 0 and again.duplicates == 100 and again.rows_written == 0
        assert {u: store.get(u) for u in log.users} == before


def test_batch_refresh_writes_a_snapshot(tmp_path, log):
    index = EventIndex(log.events)
    with FeatureStore(tmp_path / "f.db") as store:
        report = batch_refresh(index, 3600.0, store)
        assert report.users == store.count() == len(index.snapshot(3600.0))
        user = log.users[0]
        assert store.get(user) == (index.features(user, 3600.0), 3600.0)


def test_batch_served_features_come_only_from_before_the_last_refresh(tmp_path, log):
    index = EventIndex(log.events)
    events = [e for e in log.events if e.event_time >= 3600]
    with FeatureStore(tmp_path / "f.db") as store:
        served = serve_from_batch(index, events, 600.0, store)
    assert served.refreshes == math.ceil((events[-1].event_time - 3600) / 600)
    triples = list(zip(served.events, served.features, served.ages_s, strict=True))
    for e, features, age in triples[::37]:
        refreshed_at = math.floor(e.event_time / 600) * 600
        assert age == pytest.approx(e.event_time - refreshed_at) and 0 < age <= 600
        assert features == index.features(e.user_id, refreshed_at)


def test_stream_served_features_are_the_point_in_time_features(log):
    rows = {r["event_id"]: r["features"] for r in point_in_time_rows(log.events)}
    events = [e for e in log.events if e.event_time >= 3600]
    served = serve_from_stream(log, events)
    assert all(f == rows[e.event_id] for e, f in zip(served.events, served.features, strict=True))


def test_fresher_features_predict_better_and_the_stream_is_the_limit(log, monkeypatch, tmp_path):
    train = [r for r in point_in_time_rows(log.events) if r["event_time"] < 3600]
    model = NextCategoryModel().fit(train)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = staleness_sweep(log, model, [7200, 60], start=3600, progress=False)
    assert not list(tmp_path.iterdir()), "the sweep's SQLite stores are removed with their folder"
    by_interval = {r["refresh_interval_s"]: r for r in rows}
    assert [r["source"] for r in rows] == ["batch", "batch", "stream"]
    assert by_interval[7200]["accuracy"] < by_interval[60]["accuracy"]
    right = by_interval[60]["right"]
    assert (
        len(right) == len(by_interval[0]["right"])
        and sum(right) / len(right) == by_interval[60]["accuracy"]
    )
    assert by_interval[0]["feature_age_p50_s"] < by_interval[60]["feature_age_p50_s"] <= 60
    assert abs(by_interval[60]["accuracy"] - by_interval[0]["accuracy"]) < 0.05
    assert by_interval[0]["freshness_p99_s"] <= 1.0 + 0.5  # a 1 s timer, plus processing


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: StreamPipeline(micro_batch=0), ValueError, "micro_batch"),
        (lambda: StreamPipeline(flush_every_s=0), ValueError, "flush_every_s"),
        (lambda: open_feature_store("postgres://x"), ValueError, "unknown feature store"),
        (lambda: NextCategoryModel().fit([]), ValueError, "no training rows"),
        (lambda: NextCategoryModel().predict([{}]), RuntimeError, "fit"),
        (lambda: FeatureStore(":memory:").put_many([("u", {})], 1.0), TypeError, "map user id"),
    ],
)
def test_bad_inputs_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_sweep_rejects_an_empty_period_and_bad_intervals(log):
    model = NextCategoryModel().fit(point_in_time_rows(log.events[:500]))
    with pytest.raises(ValueError, match="no events"):
        staleness_sweep(log, model, [60], start=10**9, progress=False)
    with pytest.raises(ValueError, match="> 0"):
        staleness_sweep(log, model, [0], start=3600, progress=False)


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path):
    with FeatureStore(tmp_path / "f.db") as store:
        store.put_many({"u1": {"a": 1}}, as_of=1.0)
        with pytest.raises(TypeError):
            store.put_many({"u1": {"a": 2}, "u2": {"a": object()}}, as_of=2.0)
        assert store.get("u1") == ({"a": 1}, 1.0) and store.count() == 1


def test_redis_feature_store_round_trip_and_atomic_refresh(redis_url, log):
    store = open_feature_store(redis_url, namespace=f"t{next(_names)}")
    assert isinstance(store, RedisFeatureStore)
    index = EventIndex(log.events)
    assert batch_refresh(index, 1800.0, store).users == store.count()
    user = log.users[0]
    assert store.get(user) == (index.features(user, 1800.0), 1800.0)
    assert store.get("nobody") is None
    with pytest.raises(TypeError):
        store.put_many({user: {"a": object()}}, as_of=2.0)
    assert store.get(user)[1] == 1800.0
    store.clear()
    assert store.count() == 0
    store.close()


def test_redis_stream_into_redis_feature_store(redis_url, log):
    name = f"events-{next(_names)}"
    producer = RedisStreamSource(redis_url, stream=name)
    producer.publish(log.events)
    store = RedisFeatureStore(redis_url, namespace=name)
    pipeline = StreamPipeline(StreamFeatures(allowed_lateness=0), store)
    report = consume(
        RedisStreamSource(redis_url, stream=name), pipeline, expected=len(log.events), count=200
    )
    assert report.read == report.applied == len(log.events) and report.rows_written > 0
    assert store.count() == len(log.users) and producer.pending() == 0
    user = log.users[-1]
    features, as_of = store.get(user)
    assert features == pipeline.features.features(user, as_of)
    store.clear()
    producer.delete()


def test_both_stores_read_the_same_urls(tmp_path):
    """The prediction store and the feature store accept the same URL forms."""
    from mlinfra_kit.serving import SQLiteStore, open_store

    for url in (
        f"sqlite:{tmp_path / 'a.db'}",
        f"sqlite://{tmp_path / 'b.db'}",
        str(tmp_path / "c.sqlite"),
        str(tmp_path / "d.sqlite3"),
    ):
        with open_store(url) as predictions, open_feature_store(url) as features:
            assert isinstance(predictions, SQLiteStore) and isinstance(features, FeatureStore)
    for bad in ("postgres://x", "sqlite:", "features.csv"):
        for opener in (open_store, open_feature_store):
            with pytest.raises(ValueError, match="sqlite:PATH|needs a path"):
                opener(bad)


def test_clear_empties_the_sqlite_feature_store(tmp_path):
    with FeatureStore(tmp_path / "f.db") as store:
        store.put_many({"u1": {"x": 1}, "u2": {"x": 2}}, as_of=1.0)
        store.clear()
        assert store.count() == 0 and store.get("u1") is None
