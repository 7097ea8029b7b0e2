"""The two ways to keep a feature store filled: a batch refresh, and a stream pipeline.

- :func:`batch_refresh` recomputes every user's features as of one moment and writes them
  in one transaction. It runs every ``refresh_interval``; between runs the store ages.
- :class:`StreamPipeline` applies events as they arrive and, after each micro-batch,
  writes the features of the users that batch touched. ``micro_batch=1`` is pure event-at-a-
  time streaming; larger batches buy throughput with lag ("if we infinitely reduce how often
  we do batch processing, we effectively have stream processing" — and back again).
  ``flush_every_s`` adds a timer, as production pipelines have: a write at least every so
  many seconds, so a slow stream does not wait for a micro-batch to fill. Replayed from a
  log, event time stands in for the timer's clock, so the time an event *waits* for its
  write is what it would wait at the log's real arrival rate, however fast the replay.

Examples
--------
>>> from mlinfra_kit.processing import FeatureStore, simulate_events
>>> import os, tempfile
>>> log = simulate_events(n_users=3, duration_s=600, seed=0)
>>> store = FeatureStore(os.path.join(tempfile.mkdtemp(), "f.db"))
>>> report = StreamPipeline(store=store, micro_batch=10).run(log.events)
>>> report.applied == len(log.events), store.count()
(True, 3)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlinfra_kit.measure import latency_stats
from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import EventIndex, StreamFeatures

__all__ = ["PipelineReport", "RefreshReport", "Store", "StreamPipeline", "batch_refresh"]


class Store(Protocol):
    """Anything features can be written to and read from (the feature stores)."""

    def put_many(self, features: dict[str, dict[str, Any]], as_of: float) -> int: ...
    def get(self, user_id: str) -> tuple[dict[str, Any], float] | None: ...


@dataclass(frozen=True)
class RefreshReport:
    """One batch refresh: users written, the event time they describe, wall and CPU
    seconds."""

    users: int
    as_of: float
    seconds: float
    cpu_seconds: float


def batch_refresh(index: EventIndex, at: float, store: Store) -> RefreshReport:
    """The batch job: every user's features as of ``at``, written in one transaction."""
    wall, cpu = time.perf_counter(), time.process_time()
    written = store.put_many(index.snapshot(at), as_of=at)
    return RefreshReport(written, at, time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(frozen=True)
class PipelineReport:
    """What one run of the stream pipeline did, and how fast.

    Per event, ``lag_s`` is the wall time from the pipeline receiving it to its features
    being in the store (processing, as fast as the replay goes), and ``wait_s`` the event
    time it waited for its write to start at the log's real arrival rate (for its
    micro-batch to fill, or for the timer). Freshness at the real rate is their sum."""

    events: int
    applied: int
    duplicates: int
    dropped_late: int
    rows_written: int
    seconds: float
    cpu_seconds: float
    lag_s: tuple[float, ...] = field(repr=False, default=())
    wait_s: tuple[float, ...] = field(repr=False, default=())

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events if self.events else float("nan")

    @property
    def freshness_s(self) -> tuple[float, ...]:
        """Per event, wait plus processing: how old an event is when its features are stored."""
        return tuple(w + lag for w, lag in zip(self.wait_s, self.lag_s, strict=True))

    def row(self) -> dict[str, float]:
        nan = float("nan")
        lag = latency_stats(self.lag_s) if self.lag_s else None
        fresh = latency_stats(self.freshness_s) if self.lag_s else None
        return {
            "events": self.events,
            "events_per_s": self.events_per_s,
            "cpu_us_per_event": self.cpu_us_per_event,
            "rows_written": self.rows_written,
            "lag_p50_ms": lag.p50_ms if lag else nan,
            "lag_p99_ms": lag.p99_ms if lag else nan,
            "freshness_p50_s": fresh.p50_ms / 1000 if fresh else nan,
            "freshness_p99_s": fresh.p99_ms / 1000 if fresh else nan,
        }


class StreamPipeline:
    """Stream features, optionally materialised in a store after every micro-batch.

    Parameters
    ----------
    features
        The incremental state (windows, lateness, de-duplication); a fresh
        :class:`StreamFeatures` by default.
    store
        Where the features of touched users are written, as of the watermark; None keeps
        them only in memory (read them with ``pipeline.features.features(user)``).
    micro_batch
        The most events applied between two writes.
    flush_every_s
        A timer: pending events are also written at every multiple of this many seconds of
        event time, so none waits longer for its write. None: writes only when a
        micro-batch is full (and at the end of the input).
    """

    def __init__(
        self,
        features: StreamFeatures | None = None,
        store: Store | None = None,
        micro_batch: int = 1,
        flush_every_s: float | None = None,
    ):
        if not isinstance(micro_batch, int) or isinstance(micro_batch, bool) or micro_batch < 1:
            raise ValueError(f"micro_batch must be an int >= 1, got {micro_batch!r}")
        if flush_every_s is not None and not flush_every_s > 0:
            raise ValueError(f"flush_every_s must be > 0 seconds or None, got {flush_every_s!r}")
        self.features = features if features is not None else StreamFeatures()
        self.store = store
        self.micro_batch = micro_batch
        self.flush_every_s = flush_every_s
        # While run() goes: event time of the oldest event not yet in the store (None: none).
        self.pending_since: float | None = None

    def apply(self, events: Sequence[Event]) -> int:
        """Apply ``events`` and write the touched users' features; returns rows written."""
        touched = {e.user_id for e in events if self.features.process(e)}
        if self.store is None or not touched:
            return 0
        at = self.features.watermark
        return self.store.put_many({u: self.features.features(u, at) for u in touched}, at)

    def run(
        self, events: Iterable[Event], on_event: Callable[[Event], None] | None = None
    ) -> PipelineReport:
        """Push ``events`` through as fast as they come, writing when a micro-batch is full
        or the timer fires; time each event from arrival to store.

        ``on_event(event)`` is called as each event arrives, after the writes that were due
        before it and before it is applied: what a reader of the store would see then."""
        s = self.features
        before = (s.applied, s.duplicates, s.dropped_late)
        lags: list[float] = []
        waits: list[float] = []
        batch: list[Event] = []
        arrived: list[float] = []
        written = 0
        clock = time.perf_counter
        every = self.flush_every_s
        tick = math.inf  # event time of the next timer write
        wall, cpu = clock(), time.process_time()

        def flush(at: float) -> int:
            rows = self.apply(batch)
            done = clock()
            lags.extend(done - a for a in arrived)
            waits.extend(max(at - e.event_time, 0.0) for e in batch)
            self.pending_since = None
            batch.clear()
            arrived.clear()
            return rows

        for event in events:
            if every is not None:
                if event.event_time >= tick and batch:
                    written += flush(tick)
                if event.event_time >= tick or tick == math.inf:
                    tick = (math.floor(event.event_time / every) + 1) * every
            if on_event is not None:
                on_event(event)
            batch.append(event)
            arrived.append(clock())
            since = self.pending_since
            self.pending_since = event.event_time if since is None else min(since, event.event_time)
            if len(batch) == self.micro_batch:  # full when its last event arrived
                written += flush(max(e.event_time for e in batch))
        if batch:  # the end of the input, or the timer
            written += flush(tick if every is not None else max(e.event_time for e in batch))
        n = len(lags)
        return PipelineReport(
            n,
            s.applied - before[0],
            s.duplicates - before[1],
            s.dropped_late - before[2],
            written,
            clock() - wall,
            time.process_time() - cpu,
            tuple(lags),
            tuple(waits),
        )
