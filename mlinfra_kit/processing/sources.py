"""Where the stream pipeline reads events from: in process, or a Redis Stream.

:class:`RedisStreamSource` is a real broker: producers ``XADD`` events; consumers in a
consumer group read with ``XREADGROUP`` and ``XACK`` an event only after applying it, so
delivery is at least once. Events a crashed consumer read but never acknowledged stay
pending, and :meth:`RedisStreamSource.reclaim` hands them to a live consumer
(``XAUTOCLAIM``). A redelivered event is harmless because :class:`StreamFeatures` applies
each event id once.

What an entry holds is the source's ``codec``: :class:`EventCodec` (one field per event
attribute) by default; the application streams whole projects through the same class with
its own codec.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import StreamFeatures
from mlinfra_kit.processing.pipeline import StreamPipeline
from mlinfra_kit.services import redis_text

__all__ = [
    "ConsumeReport",
    "EventCodec",
    "EventSource",
    "RedisStreamSource",
    "StreamCodec",
    "consume",
    "text_fields",
]

_FIELDS = ("event_id", "user_id", "category", "kind", "event_time")
T = TypeVar("T")


class StreamCodec(Protocol[T]):
    """How one item becomes the fields of a stream entry, and back."""

    def encode(self, item: T) -> dict[str, Any]: ...

    def decode(self, fields: dict) -> T: ...


def text_fields(fields: dict) -> dict[str, str]:
    """An entry's fields as ``str`` (redis-py returns bytes)."""
    return {redis_text(k): redis_text(v) for k, v in fields.items()}


class EventCodec:
    """An :class:`Event` as one stream field per attribute."""

    def encode(self, event: Event) -> dict[str, Any]:
        return {f: getattr(event, f) for f in _FIELDS}

    def decode(self, fields: dict) -> Event:
        get = text_fields(fields)
        missing = [f for f in _FIELDS if f not in get]
        if missing:
            raise ValueError(f"stream entry lacks field(s) {missing}: {get}")
        return Event(
            get["event_id"], get["user_id"], get["category"], get["kind"], float(get["event_time"])
        )


class RedisStreamSource(Generic[T]):
    """One consumer of a Redis Stream in a consumer group.

    ``codec`` turns items into entries and back (events by default); ``fresh=True`` deletes
    what the stream held before (its entries and groups) so a run starts from nothing.
    """

    def __init__(
        self,
        url: str,
        stream: str = "mlinfra:events",
        group: str = "features",
        consumer: str = "consumer-1",
        codec: StreamCodec[T] | None = None,
        fresh: bool = False,
    ):
        import redis

        self.stream, self.group, self.consumer = stream, group, consumer
        self.codec: StreamCodec[Any] = codec if codec is not None else EventCodec()
        self._redis = redis.Redis.from_url(url)
        if fresh:
            self._redis.delete(stream)
        try:
            self._redis.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):  # the group exists already: fine
                raise

    def publish(self, items: Iterable[T], batch: int = 1000) -> int:
        """XADD ``items``, pipelined ``batch`` at a time; returns how many."""
        pipe, n = self._redis.pipeline(transaction=False), 0
        for item in items:
            pipe.xadd(self.stream, self.codec.encode(item))
            n += 1
            if n % batch == 0:
                pipe.execute()
        pipe.execute()
        return n

    def read(self, count: int = 500, block_ms: int = 100) -> list[tuple[bytes, T]]:
        """New entries for this consumer (they stay pending until acknowledged)."""
        reply: Any = self._redis.xreadgroup(  # [[stream, [(id, fields), ...]]] or None
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [
            (mid, self.codec.decode(fields))
            for _, entries in reply or ()
            for mid, fields in entries
        ]

    def reclaim(self, min_idle_ms: int = 30_000, count: int = 500) -> list[tuple[bytes, T]]:
        """Take over entries other consumers read but did not acknowledge for
        ``min_idle_ms`` (they crashed, or hang)."""
        reply = self._redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_ms, start_id="0-0", count=count
        )
        return [(mid, self.codec.decode(fields)) for mid, fields in reply[1] if fields]

    def ack(self, message_ids: Sequence[bytes]) -> int:
        return self._redis.xack(self.stream, self.group, *message_ids) if message_ids else 0

    def pending(self) -> int:
        return self._redis.xpending(self.stream, self.group)["pending"]

    def delete(self) -> None:
        self._redis.delete(self.stream)

    def close(self) -> None:
        self._redis.close()


class EventSource(Protocol):
    """What :func:`consume` needs of a transport: Redis Streams
    (:class:`RedisStreamSource`), Kinesis (:class:`~mlinfra_kit.processing.kinesis.KinesisSource`),
    or a Kafka consumer written to the same three methods."""

    def read(self, count: int = ..., block_ms: int = ...) -> list[tuple[Any, Event]]: ...

    def ack(self, refs: Sequence[Any]) -> int: ...

    def reclaim(self, min_idle_ms: int = ..., count: int = ...) -> list[tuple[Any, Event]]: ...


@dataclass(frozen=True)
class ConsumeReport:
    """What a stream consumer did: events read, applied, skipped as duplicates or too late,
    time taken, rows written."""

    read: int
    applied: int
    duplicates: int
    dropped_late: int
    seconds: float
    rows_written: int = 0

    @property
    def events_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else float("nan")


def consume(
    source: EventSource,
    processor: StreamFeatures | StreamPipeline,
    expected: int | None = None,
    count: int = 500,
    idle_rounds: int = 3,
    reclaim_idle_ms: int | None = None,
) -> ConsumeReport:
    """Read, apply and acknowledge until ``expected`` events were read (or ``idle_rounds``
    reads in a row bring nothing). Each read of up to ``count`` entries is one micro-batch:
    applied (and, with a :class:`StreamPipeline` that has a store, written) before it is
    acknowledged. With ``reclaim_idle_ms``, first take over what dead consumers left
    pending."""
    pipeline = processor if isinstance(processor, StreamPipeline) else StreamPipeline(processor)
    state = pipeline.features
    before = (state.applied, state.duplicates, state.dropped_late)
    read = idle = written = 0
    tic = time.perf_counter()

    def apply_and_ack(batch: list[tuple[Any, Event]]) -> int:
        rows = pipeline.apply([event for _, event in batch])
        source.ack([mid for mid, _ in batch])  # after applying: at least once
        return rows

    if reclaim_idle_ms is not None:
        batch = source.reclaim(reclaim_idle_ms, count=10_000)
        written += apply_and_ack(batch)
        read += len(batch)
    while (expected is None or read < expected) and idle < idle_rounds:
        batch = source.read(count)
        if not batch:
            idle += 1
            continue
        idle = 0
        written += apply_and_ack(batch)
        read += len(batch)
    return ConsumeReport(
        read,
        state.applied - before[0],
        state.duplicates - before[1],
        state.dropped_late - before[2],
        time.perf_counter() - tic,
        written,
    )
