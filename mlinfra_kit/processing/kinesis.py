"""Amazon Kinesis as the event transport, through boto3, against a local endpoint.

:func:`kinesis_server` starts moto's server mode, a real HTTP process on loopback that
speaks Kinesis' API (what the notebook and the tests use; point ``endpoint_url`` at AWS and
the same code runs there). :class:`KinesisSource` has the interface of
:class:`~mlinfra_kit.processing.sources.RedisStreamSource`, so
:func:`~mlinfra_kit.processing.sources.consume` drives either:

- **producer**: ``PutRecords`` in batches of up to 500 (Kinesis' limit), the user id as the
  partition key, so one user's events land on one shard, in order; records Kinesis refuses
  (``FailedRecordCount``) are sent again;
- **consumer**: a shard iterator per shard, records read from every shard in turn;
- **checkpoints**: :meth:`KinesisSource.ack` records, per shard, the last sequence number
  applied, in a SQLite file (one transaction per acknowledgement). A consumer that restarts
  resumes ``AFTER_SEQUENCE_NUMBER`` of its checkpoint: nothing applied is lost; what was read
  but not acknowledged is read again, and the features' idempotence (by event id) makes the
  second delivery harmless.

Kinesis orders records within a shard only. Reading several shards in turn interleaves
their event times, so a consumer's watermark can run ahead of a shard that lags: the
features' ``allowed_lateness`` must cover that skew, or events are dropped as late.

How Kafka maps onto the same interface (no Kafka broker is installable here, so the kit
ships no Kafka adapter): a topic's partitions are Kinesis' shards and Redis' single stream
key; a consumer group is a Redis consumer group and a Kinesis application's checkpoint
table; a committed offset is a checkpointed sequence number and an ``XACK``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.sources import EventCodec, StreamCodec
from mlinfra_kit.services import LOOPBACK, child_process, free_port

__all__ = ["PUT_RECORDS_LIMIT", "KinesisSource", "kinesis_experiment", "kinesis_server"]

T = TypeVar("T")
#: Kinesis accepts at most this many records in one PutRecords call.
PUT_RECORDS_LIMIT = 500
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextlib.contextmanager
def kinesis_server(port: int | None = None, timeout_s: float = 60) -> Iterator[str]:
    """A local Kinesis endpoint (moto's server mode) on loopback; yields its URL."""
    import shutil
    import sys

    import httpx

    program = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(program).exists():
        raise RuntimeError("moto's server is not installed: pip install 'mlinfra-kit[streams]'")
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    with child_process(
        [program, "-H", LOOPBACK, "-p", str(port)],
        f"moto server on port {port}",
        lambda: httpx.get(url + "/moto-api/", timeout=1).status_code < 500,
        timeout_s,
    ):
        yield url


class KinesisSource(Generic[T]):
    """One consumer of a Kinesis stream, with its checkpoints in ``checkpoints`` (a SQLite
    file; ``None``: kept in memory only, lost with the consumer).

    ``partition_key(item)`` chooses the shard (default: the item's ``user_id``);
    ``fresh=True`` deletes the stream first, so a run starts from nothing.
    """

    def __init__(
        self,
        endpoint_url: str,
        stream: str = "mlinfra-events",
        shards: int = 2,
        consumer: str = "features",
        checkpoints: str | Path | None = None,
        codec: StreamCodec[T] | None = None,
        partition_key: Any = None,
        fresh: bool = False,
        region: str = "us-east-1",
    ):
        import boto3

        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self.stream, self.consumer = stream, consumer
        self.codec: StreamCodec[Any] = codec if codec is not None else EventCodec()
        self.partition_key = partition_key or (lambda item: str(item.user_id))
        self._client = boto3.client(
            "kinesis", endpoint_url=endpoint_url, region_name=region, **_CREDENTIALS
        )
        names = self._client.list_streams()["StreamNames"]
        if fresh and stream in names:
            self._client.delete_stream(StreamName=stream)
            self._client.get_waiter("stream_not_exists").wait(StreamName=stream)
            names = []
        if stream not in names:
            self._client.create_stream(StreamName=stream, ShardCount=shards)
        self._client.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        self.shards = [s["ShardId"] for s in self._client.list_shards(StreamName=stream)["Shards"]]
        self._db = sqlite3.connect(str(checkpoints) if checkpoints else ":memory:")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (stream TEXT, consumer TEXT, shard TEXT, "
            "sequence TEXT, PRIMARY KEY (stream, consumer, shard))"
        )
        if fresh:
            with self._db:
                self._db.execute(
                    "DELETE FROM checkpoints WHERE stream = ? AND consumer = ?", (stream, consumer)
                )
        self._iterators: dict[str, str] = {}
        self._unacked: dict[tuple[str, str], None] = {}
        #: Seconds from each record's arrival in the stream (Kinesis' timestamp, in ms) to
        #: this consumer reading it: the transport's share of freshness.
        self.read_lags_s: list[float] = []

    # -- producer --------------------------------------------------------------------

    def publish(self, items: Iterable[T], batch: int = PUT_RECORDS_LIMIT) -> int:
        """PutRecords ``items``, ``batch`` at a time (at most 500), each with its partition
        key; records Kinesis refuses are sent again. Returns how many were written."""
        if not 1 <= batch <= PUT_RECORDS_LIMIT:
            raise ValueError(f"batch must be between 1 and {PUT_RECORDS_LIMIT}, got {batch}")
        chunk: list[dict[str, Any]] = []
        written = 0
        for item in items:
            chunk.append(
                {
                    "Data": json.dumps(self.codec.encode(item)).encode(),
                    "PartitionKey": self.partition_key(item),
                }
            )
            if len(chunk) == batch:
                written += self._put(chunk)
                chunk = []
        return written + (self._put(chunk) if chunk else 0)

    def _put(self, records: list[dict[str, Any]], attempts: int = 5) -> int:
        for attempt in range(attempts):
            reply = self._client.put_records(StreamName=self.stream, Records=records)
            if not reply["FailedRecordCount"]:
                return len(records)
            records = [
                r for r, out in zip(records, reply["Records"], strict=True) if "ErrorCode" in out
            ]
            time.sleep(0.05 * 2**attempt)  # throttled: back off, then send the rest again
        raise RuntimeError(f"Kinesis refused {len(records)} records {attempts} times")

    # -- consumer --------------------------------------------------------------------

    def _checkpoint(self, shard: str) -> str | None:
        row = self._db.execute(
            "SELECT sequence FROM checkpoints WHERE stream = ? AND consumer = ? AND shard = ?",
            (self.stream, self.consumer, shard),
        ).fetchone()
        return row[0] if row else None

    def _from_checkpoint(self, shard: str) -> str:
        """A new iterator on ``shard`` just after its checkpoint (the start, without one)."""
        after = self._checkpoint(shard)
        where = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return self._client.get_shard_iterator(StreamName=self.stream, ShardId=shard, **where)[
            "ShardIterator"
        ]

    def _iterator(self, shard: str) -> str:
        if shard not in self._iterators:
            self._iterators[shard] = self._from_checkpoint(shard)
        return self._iterators[shard]

    def read(self, count: int = 500, block_ms: int = 100) -> list[tuple[tuple[str, str], T]]:
        """Up to ``count`` new records, from every shard in turn (each shard's in order);
        each comes with its ``(shard, sequence number)`` for :meth:`ack`. Waits
        ``block_ms`` when there was nothing."""
        per_shard = max(1, count // len(self.shards))
        out: list[tuple[tuple[str, str], T]] = []
        for shard in self.shards:
            reply = self._client.get_records(ShardIterator=self._iterator(shard), Limit=per_shard)
            self._iterators[shard] = reply["NextShardIterator"]
            now = time.time()
            for record in reply["Records"]:
                self.read_lags_s.append(now - record["ApproximateArrivalTimestamp"].timestamp())
                ref = (shard, record["SequenceNumber"])
                self._unacked[ref] = None
                out.append((ref, self.codec.decode(json.loads(record["Data"]))))
        if not out and block_ms:
            time.sleep(block_ms / 1000)
        return out

    def ack(self, refs: Sequence[tuple[str, str]]) -> int:
        """Checkpoint, per shard, the highest sequence number in ``refs`` (one transaction).
        Call it after the records are applied: a restart resumes after them."""
        last: dict[str, str] = {}
        for shard, sequence in refs:
            self._unacked.pop((shard, sequence), None)
            if shard not in last or int(sequence) > int(last[shard]):
                last[shard] = sequence
        with self._db:
            self._db.executemany(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (stream, consumer, "
                "shard) DO UPDATE SET sequence = excluded.sequence",
                [(self.stream, self.consumer, s, q) for s, q in last.items()],
            )
        return len(refs)

    def reclaim(self, min_idle_ms: int = 0, count: int = 500) -> list[tuple[Any, T]]:
        """Nothing to reclaim: Kinesis has no pending list. A restarted consumer reads
        again from its checkpoint instead."""
        return []

    def pending(self) -> int:
        """Records read but not acknowledged by this consumer."""
        return len(self._unacked)

    def lag_records(self) -> int:
        """Records in the stream after this consumer's checkpoints (what it has yet to
        apply), counted by reading them with a separate iterator."""
        behind = 0
        for shard in self.shards:
            iterator = self._from_checkpoint(shard)
            while True:
                reply = self._client.get_records(ShardIterator=iterator, Limit=10_000)
                behind += len(reply["Records"])
                iterator = reply["NextShardIterator"]
                if not reply["Records"]:
                    break
        return behind

    def delete(self) -> None:
        self._client.delete_stream(StreamName=self.stream)

    def close(self) -> None:
        self._db.close()
        self._client.close()


def kinesis_experiment(
    endpoint: str,
    events: Sequence[Event],
    workdir: str | Path,
    *,
    stream: str = "events",
    shards: int = 2,
    micro_batch: int = 500,
    allowed_lateness_s: float = 86_400.0,
    strict_lateness_s: float = 60.0,
) -> dict[str, Any]:
    """``events`` through a Kinesis stream of ``shards`` at ``endpoint`` into the stream
    features, measured three ways, as ``02_processing`` shows it (one row):

    - **live**: a producer thread puts every event while a consumer reads, applies and
      writes micro-batches of ``micro_batch`` into a SQLite feature store, checkpointing
      after each (``put_events_per_s``, ``live_events_per_s``, the read lag after arrival,
      ``applied``, ``dropped_late``, ``behind_after``: records behind the checkpoints);
    - **backlog**: a second consumer reads the whole stream with nothing else running, for
      the consumer's own rate and CPU per event (its thread's CPU);
    - **shard skew**: how far event time runs ahead of an arriving event when the shards
      are read in turn, and how many events a ``strict_lateness_s`` lateness would drop in
      that order.

    ``features_equal``: the live pipeline's features equal the batch job's over the same
    events. The consumer's checkpoints go in ``workdir``; ``stream`` is created afresh."""
    import threading

    from mlinfra_kit.measure import latency_stats
    from mlinfra_kit.processing.features import StreamFeatures
    from mlinfra_kit.processing.pipeline import StreamPipeline
    from mlinfra_kit.processing.sources import consume
    from mlinfra_kit.processing.store import FeatureStore

    workdir = Path(workdir)
    producer: KinesisSource[Event] = KinesisSource(endpoint, stream, shards=shards, fresh=True)
    consumer: KinesisSource[Event] = KinesisSource(
        endpoint, stream, checkpoints=workdir / f"{stream}-checkpoints.db"
    )
    sent: dict[str, float] = {}

    def produce() -> None:
        tic = time.perf_counter()
        sent["events"] = producer.publish(events)
        sent["seconds"] = time.perf_counter() - tic

    try:
        with FeatureStore(workdir / f"{stream}.db") as store:
            pipeline = StreamPipeline(
                StreamFeatures(allowed_lateness=allowed_lateness_s), store, micro_batch
            )
            sender = threading.Thread(target=produce)
            sender.start()
            live = consume(
                consumer, pipeline, expected=len(events), count=micro_batch, idle_rounds=100
            )
            sender.join()
        backlog: KinesisSource[Event] = KinesisSource(endpoint, stream, consumer="backlog")
        cpu = time.thread_time()
        catch_up = consume(
            backlog,
            StreamFeatures(allowed_lateness=allowed_lateness_s),
            expected=len(events),
            count=micro_batch,
            idle_rounds=100,
        )
        backlog_cpu = time.thread_time() - cpu
        reader: KinesisSource[Event] = KinesisSource(endpoint, stream, consumer="skew")
        order: list[Event] = []
        while page := reader.read(count=micro_batch, block_ms=0):
            order += [event for _, event in page]
        seen = [event.event_time for event in order]
        ahead = (high - t for high, t in zip(itertools.accumulate(seen, max), seen, strict=True))
        strict = StreamFeatures(allowed_lateness=strict_lateness_s)
        for event in order:
            strict.process(event)
        lags = latency_stats(consumer.read_lags_s)
        return {
            "shards": shards,
            "put_events_per_s": sent["events"] / sent["seconds"],
            "live_events_per_s": live.events_per_s,
            "consumed_events_per_s": catch_up.events_per_s,
            "consumer_cpu_us_per_event": 1e6 * backlog_cpu / max(catch_up.read, 1),
            "read_lag_p50_ms": lags.p50_ms,
            "read_lag_p99_ms": lags.p99_ms,
            "applied": live.applied,
            "dropped_late": live.dropped_late,
            "shard_skew_s": max(ahead, default=0.0),
            "dropped_with_strict_lateness": strict.dropped_late,
            "features_equal": pipeline.features.matches_batch(events),
            "behind_after": consumer.lag_records(),
        }
    finally:
        consumer.close()
        producer.close()
