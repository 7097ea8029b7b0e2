"""Kinesis through boto3 against a real local endpoint (moto's server on loopback):
batched PutRecords with partition keys, shard iterators, checkpoints that survive a
consumer restart with no event lost, and duplicates absorbed by the features."""

import itertools

import pytest
from helpers import require_module

require_module("moto", "pip install 'mlinfra-kit[streams]'")

from mlinfra_kit.processing import StreamFeatures, batch_features, simulate_events  # noqa: E402
from mlinfra_kit.processing.kinesis import (  # noqa: E402
    KinesisSource,
    kinesis_experiment,
    kinesis_server,
)
from mlinfra_kit.processing.sources import consume  # noqa: E402

_names = itertools.count()
WINDOWS = (300, 3600)


@pytest.fixture(scope="module")
def endpoint():
    with kinesis_server() as url:
        yield url


@pytest.fixture
def log():
    return simulate_events(n_users=8, duration_s=1800, seed=3)


def test_events_arrive_once_each_with_the_batch_jobs_features(endpoint, log, tmp_path):
    name = f"events-{next(_names)}"
    producer = KinesisSource(endpoint, name, shards=3, fresh=True)
    assert producer.publish(log.events, batch=200) == len(log.events)
    consumer = KinesisSource(endpoint, name, checkpoints=tmp_path / "checkpoints.db")
    stream = StreamFeatures(WINDOWS, allowed_lateness=3600)  # shards interleave event times
    report = consume(consumer, stream, expected=len(log.events))
    assert report.read == report.applied == len(log.events) and consumer.pending() == 0
    assert consumer.lag_records() == 0
    assert len(consumer.read_lags_s) == len(log.events) and min(consumer.read_lags_s) > -1
    at = stream.watermark
    assert {u: stream.features(u, at) for u in stream.users} == batch_features(
        log.events, at, WINDOWS
    )


def test_one_users_events_stay_on_one_shard_in_order(endpoint, log):
    name = f"events-{next(_names)}"
    source = KinesisSource(endpoint, name, shards=4, fresh=True)
    source.publish(log.events)
    shard_of, times = {}, {}
    while batch := source.read(count=1000, block_ms=0):
        for (shard, _), event in batch:
            assert shard_of.setdefault(event.user_id, shard) == shard
            times.setdefault(event.user_id, []).append(event.event_time)
    assert len(set(shard_of.values())) > 1  # the users are spread over the shards
    assert all(t == sorted(t) for t in times.values())


def test_a_restarted_consumer_resumes_from_its_checkpoint_and_loses_nothing(
    endpoint, log, tmp_path
):
    name = f"events-{next(_names)}"
    checkpoints = tmp_path / "checkpoints.db"
    KinesisSource(endpoint, name, shards=2, fresh=True).publish(log.events)
    stream = StreamFeatures(WINDOWS, allowed_lateness=3600)
    first = KinesisSource(endpoint, name, checkpoints=checkpoints)
    half = len(log.events) // 2
    consume(first, stream, expected=half, count=100)
    taken = first.read(count=100)  # read and applied, then the process dies before its ack
    for _, event in taken:
        stream.process(event)
    first.close()

    second = KinesisSource(endpoint, name, checkpoints=checkpoints)
    report = consume(second, stream, expected=len(log.events) - half, idle_rounds=3)
    assert stream.applied == len(log.events)  # nothing lost
    assert report.duplicates == len(taken)  # read again after the restart, applied once
    assert second.lag_records() == 0


def test_bad_settings_are_refused(endpoint):
    with pytest.raises(ValueError, match="shards must be at least 1"):
        KinesisSource(endpoint, "x", shards=0)
    source = KinesisSource(endpoint, f"events-{next(_names)}", shards=1, fresh=True)
    with pytest.raises(ValueError, match="batch must be between 1 and 500"):
        source.publish([], batch=501)


def test_the_notebooks_experiment_applies_every_event_once_and_measures_the_skew(
    endpoint, log, tmp_path
):
    row = kinesis_experiment(
        endpoint,
        log.events,
        tmp_path,
        stream="experiment",
        shards=2,
        micro_batch=100,
        allowed_lateness_s=86_400,
        strict_lateness_s=60,
    )
    assert row["applied"] == len(log.events) and row["behind_after"] == 0
    assert row["features_equal"] and row["dropped_late"] == 0
    assert row["consumed_events_per_s"] > 0 and row["put_events_per_s"] > 0
    assert row["shard_skew_s"] >= 0 and row["dropped_with_strict_lateness"] >= 0
    assert row["read_lag_p50_ms"] <= row["read_lag_p99_ms"]
