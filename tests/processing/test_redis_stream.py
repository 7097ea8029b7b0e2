"""Redis Streams against a real redis-server: at-least-once delivery, crash recovery."""

import itertools

import pytest

from mlinfra_kit.processing import StreamFeatures, batch_features, simulate_events
from mlinfra_kit.processing.sources import RedisStreamSource, consume

_names = itertools.count()
WINDOWS = (300, 3600)


@pytest.fixture
def log():
    return simulate_events(n_users=5, duration_s=1800, seed=2)


def source(url, stream, consumer="c1"):
    return RedisStreamSource(url, stream=stream, consumer=consumer)


def test_published_events_are_consumed_once_and_acknowledged(redis_url, log):
    name = f"events-{next(_names)}"
    producer = source(redis_url, name)
    assert producer.publish(log.events, batch=100) == len(log.events)
    stream = StreamFeatures(WINDOWS, allowed_lateness=0)
    report = consume(source(redis_url, name), stream, expected=len(log.events))
    assert report.read == report.applied == len(log.events) and producer.pending() == 0
    at = stream.watermark
    assert {u: stream.features(u, at) for u in stream.users} == batch_features(
        log.events, at, WINDOWS
    )
    producer.delete()


def test_a_crashed_consumer_loses_nothing(redis_url, log):
    name = f"events-{next(_names)}"
    producer = source(redis_url, name)
    producer.publish(log.events)
    crashed = source(redis_url, name, consumer="crashes")
    taken = crashed.read(count=50)  # read, never acknowledged: the process "died"
    assert len(taken) == 50 and producer.pending() == 50
    stream = StreamFeatures(WINDOWS, allowed_lateness=10_000)
    survivor = source(redis_url, name, consumer="survivor")
    report = consume(survivor, stream, expected=len(log.events), reclaim_idle_ms=0)
    assert stream.applied == len(log.events) and producer.pending() == 0
    assert report.read == len(log.events)
    # A redelivery of what was already applied does not double count.
    for _, event in taken:
        assert not stream.process(event)
    producer.delete()


def test_malformed_entries_are_a_clear_error(redis_url):
    name = f"events-{next(_names)}"
    src = source(redis_url, name)
    src._redis.xadd(name, {"user_id": "u"})
    with pytest.raises(ValueError, match="lacks field"):
        src.read()
    src.delete()
