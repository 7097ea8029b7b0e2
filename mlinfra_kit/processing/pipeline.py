"""The two ways to keep a feature store filled: a batch refresh, and a stream pipeline.

- :func:`batch_refresh` recomputes every user's features as of one moment and writes them
  in one transaction. It runs every ``refresh_interval``; between runs the store ages.
- :class:`StreamPipeline` applies events as they arrive and, after each micro-batch,
  writes the features of the users that batch touched. ``micro_batch=1`` is pure event-at-a-
  time streaming; larger batches buy throughput with lag ("if we infinitely reduce how often
  we do batch processing, we effectively have stream processing" — and back again).

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

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlinfra_kit.measure import latency_stats
from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import EventIndex, StreamFeatures


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
    """What one run of the stream pipeline did, and how fast. ``lag_s`` holds, per event,
    the wall time from the pipeline receiving it to its features being in the store."""

    events: int
    applied: int
    duplicates: int
    dropped_late: int
    rows_written: int
    seconds: float
    cpu_seconds: float
    lag_s: tuple[float, ...] = field(repr=False, default=())

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events if self.events else float("nan")

    def row(self) -> dict[str, float]:
        lag = latency_stats(self.lag_s) if self.lag_s else None
        return {
            "events": self.events,
            "events_per_s": self.events_per_s,
            "cpu_us_per_event": self.cpu_us_per_event,
            "rows_written": self.rows_written,
            "lag_p50_ms": lag.p50_ms if lag else float("nan"),
            "lag_p99_ms": lag.p99_ms if lag else float("nan"),
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
        Events applied between two writes.
    """

    def __init__(
        self,
        features: StreamFeatures | None = None,
        store: Store | None = None,
        micro_batch: int = 1,
    ):
        self.features = features if features is not None else StreamFeatures()
        self.store = store
        self.micro_batch = micro_batch

    def apply(self, events: Sequence[Event]) -> int:
        """Apply ``events`` and write the touched users' features; returns rows written."""
        touched = {e.user_id for e in events if self.features.process(e)}
        if self.store is None or not touched:
            return 0
        at = self.features.watermark
        return self.store.put_many({u: self.features.features(u, at) for u in touched}, at)

    def run(self, events: Iterable[Event]) -> PipelineReport:
        """Push ``events`` through in micro-batches as fast as they come; time each one."""
        if not isinstance(self.micro_batch, int) or self.micro_batch < 1:
            raise ValueError(f"micro_batch must be an int >= 1, got {self.micro_batch!r}")
        s = self.features
        before = (s.applied, s.duplicates, s.dropped_late)
        lags: list[float] = []
        batch: list[Event] = []
        arrived: list[float] = []
        written = 0
        clock = time.perf_counter
        wall, cpu = clock(), time.process_time()

        def flush() -> int:
            rows = self.apply(batch)
            done = clock()
            lags.extend(done - a for a in arrived)
            batch.clear()
            arrived.clear()
            return rows

        for event in events:
            batch.append(event)
            arrived.append(clock())
            if len(batch) == self.micro_batch:
                written += flush()
        if batch:
            written += flush()
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
        )
