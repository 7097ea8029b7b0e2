"""The staleness study: one model, served features from the stream or from batch refreshes.

A model that predicts the category of a user's next event is trained once, on point-in-time
rows (features exactly as they were). It is then evaluated on later events with features
from two sources:

- **batch**: a job refreshes the feature store every ``refresh_interval_s`` of event time;
  a prediction at time ``t`` reads what the last refresh before ``t`` wrote;
- **stream**: the pipeline has applied every event before ``t``; features are read from its
  state as of ``t``.

Same model, same events, same feature definition: any difference in accuracy is freshness.
As the refresh interval shrinks, batch features converge to the stream's.

Examples
--------
>>> from mlinfra_kit.processing import simulate_events, point_in_time_rows
>>> log = simulate_events(n_users=10, duration_s=4 * 3600, seed=0)
>>> train = [r for r in point_in_time_rows(log.events) if r["event_time"] < 7200]
>>> model = NextCategoryModel().fit(train)
>>> rows = staleness_sweep(log, model, [3600, 60], start=7200, progress=False)
>>> [r["source"] for r in rows]
['batch', 'batch', 'stream']
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.measure import percentile
from mlinfra_kit.processing.events import CATEGORIES, Event, EventLog
from mlinfra_kit.processing.features import (
    DEFAULT_WINDOWS,
    EventIndex,
    StreamFeatures,
    _check_windows,
    compute_features,
)
from mlinfra_kit.processing.pipeline import PipelineReport, Store, StreamPipeline, batch_refresh
from mlinfra_kit.processing.store import FeatureStore

__all__ = [
    "NextCategoryModel",
    "Served",
    "ceiling_accuracy",
    "feature_vector",
    "serve_from_batch",
    "serve_from_pipeline",
    "serve_from_stream",
    "staleness_sweep",
]


def feature_vector(
    features: dict[str, Any], windows: Sequence[float] = DEFAULT_WINDOWS
) -> list[float]:
    """Numbers a linear model can use: category shares and activity per window, click
    rates, log recency, and the top category one-hot."""
    vector: list[float] = []
    for w in _check_windows(windows):
        counts = [features[f"count_{w:g}s_{c}"] for c in CATEGORIES]
        total = sum(counts)
        vector += [c / total if total else 0.0 for c in counts]
        vector += [math.log1p(total), features[f"click_rate_{w:g}s"]]
    recency = features["recency_s"]
    vector += [math.log1p(recency) if recency is not None else 15.0, float(recency is None)]
    vector += [float(features["top_category"] == c) for c in CATEGORIES]
    return vector


class NextCategoryModel:
    """Multinomial logistic regression: features -> the category of the user's next event."""

    def __init__(self, windows: Sequence[float] = DEFAULT_WINDOWS, C: float = 1.0):
        self.windows = windows
        self.C = C

    def fit(self, rows: Sequence[dict[str, Any]]) -> NextCategoryModel:
        """``rows`` from :func:`point_in_time_rows`; the label is each row's ``category``."""
        from sklearn.linear_model import LogisticRegression

        if not rows:
            raise ValueError("no training rows: the training period holds no events")
        x = [feature_vector(r["features"], self.windows) for r in rows]
        y = [r["category"] for r in rows]
        if len(set(y)) < 2:
            raise ValueError("training rows hold a single category: simulate more users/time")
        self.model_ = LogisticRegression(C=self.C, max_iter=1000).fit(x, y)
        return self

    def predict(self, features: Sequence[dict[str, Any]]) -> list[str]:
        if not hasattr(self, "model_"):
            raise RuntimeError("call fit() before predict()")
        if not features:
            return []
        return list(self.model_.predict([feature_vector(f, self.windows) for f in features]))

    def right(
        self, features: Sequence[dict[str, Any]], categories: Sequence[str]
    ) -> tuple[bool, ...]:
        """Whether each prediction is the category that came: per-event outcomes, the input
        of a paired comparison (:func:`~mlinfra_kit.comparison.accuracy_difference`)."""
        predicted = self.predict(features)
        return tuple(p == c for p, c in zip(predicted, categories, strict=True))

    def accuracy(self, features: Sequence[dict[str, Any]], categories: Sequence[str]) -> float:
        right = self.right(features, categories)
        return sum(right) / len(right)


@dataclass(frozen=True)
class Served:
    """The features each evaluated event was predicted with, and how old they were."""

    events: tuple[Event, ...]
    features: tuple[dict[str, Any], ...]
    ages_s: tuple[float, ...]
    refreshes: int
    seconds: float


def _evaluated(log: EventLog, start: float, end: float) -> list[Event]:
    return [e for e in log.events if start <= e.event_time < end]


def serve_from_batch(
    index: EventIndex, events: Sequence[Event], refresh_interval_s: float, store: Store
) -> Served:
    """Replay ``events`` (time-ordered) against a store refreshed every
    ``refresh_interval_s`` of event time by :func:`batch_refresh` over ``index``."""
    if refresh_interval_s <= 0:
        raise ValueError(f"refresh_interval_s must be > 0, got {refresh_interval_s}")
    tic = time.perf_counter()
    features, ages, refreshes = [], [], 0
    next_refresh = math.floor(events[0].event_time / refresh_interval_s) * refresh_interval_s
    last_refresh = -math.inf
    for e in events:
        while next_refresh < e.event_time:  # every refresh that happened before this event
            batch_refresh(index, next_refresh, store)
            last_refresh, refreshes = next_refresh, refreshes + 1
            next_refresh += refresh_interval_s
        stored = store.get(e.user_id)
        if stored is None:  # not in the last refresh: no history as of then
            stored = compute_features((), last_refresh, index.windows), last_refresh
        features.append(stored[0])
        ages.append(e.event_time - last_refresh)
    return Served(tuple(events), tuple(features), tuple(ages), refreshes, time.perf_counter() - tic)


def serve_from_stream(
    log: EventLog, events: Sequence[Event], windows: Sequence[float] = DEFAULT_WINDOWS
) -> Served:
    """Replay the whole log through :class:`StreamFeatures`; each evaluated event is
    predicted with the state's features just before it arrives. The age is how far the
    pipeline's watermark trails the event."""
    tic = time.perf_counter()
    state = StreamFeatures(windows, allowed_lateness=0)
    wanted = {e.event_id for e in events}
    features, ages = [], []
    for e in log.events:
        if e.event_id in wanted:
            at = math.nextafter(e.event_time, -math.inf)
            features.append(
                state.features(e.user_id, at)
                if e.user_id in state
                else compute_features((), at, windows)
            )
            ages.append(e.event_time - state.watermark)
        state.process(e)
    return Served(tuple(events), tuple(features), tuple(ages), 0, time.perf_counter() - tic)


def serve_from_pipeline(
    log: EventLog,
    events: Sequence[Event],
    pipeline: StreamPipeline,
) -> tuple[Served, PipelineReport]:
    """Replay the whole log through ``pipeline`` (which has a store); each evaluated event is
    predicted with what the store holds for its user when it arrives, as a server reading
    the store would. The age is how far the store trails the event: the time since the
    oldest event not yet written arrived (0 when the store holds every earlier event).

    Returns the served features and the pipeline's own report (cost, wait, lag) of the
    same run, so accuracy and freshness come from one pipeline."""
    if pipeline.store is None:
        raise ValueError("serve_from_pipeline reads the store: give the pipeline a store")
    tic = time.perf_counter()
    wanted = {e.event_id for e in events}
    windows = pipeline.features.windows
    features: list[dict[str, Any]] = []
    ages: list[float] = []

    def read(e: Event) -> None:
        if e.event_id not in wanted:
            return
        stored = pipeline.store.get(e.user_id)
        if stored is None:  # nothing written for this user yet: no history
            stored = compute_features((), e.event_time, windows), -math.inf
        features.append(stored[0])
        since = pipeline.pending_since
        ages.append(0.0 if since is None else e.event_time - since)

    report = pipeline.run(log.events, on_event=read)
    served = Served(tuple(events), tuple(features), tuple(ages), 0, time.perf_counter() - tic)
    return served, report


def _row(source: str, interval: float, model: NextCategoryModel, served: Served) -> dict[str, Any]:
    ages = sorted(served.ages_s)
    right = model.right(served.features, [e.category for e in served.events])
    return {
        "source": source,
        "refresh_interval_s": interval,
        "accuracy": sum(right) / len(right),
        "right": right,
        "feature_age_p50_s": percentile(ages, 50),
        "feature_age_p99_s": percentile(ages, 99),
        "refreshes": served.refreshes,
        "replay_s": served.seconds,
    }


def _stream_row(
    log: EventLog,
    events: Sequence[Event],
    model: NextCategoryModel,
    pipeline: StreamPipeline,
    flush_every_s: float,
) -> dict[str, Any]:
    served, report = serve_from_pipeline(log, events, pipeline)
    cost = report.row()
    return (
        _row("stream", 0.0, model, served)
        | {"flush_every_s": flush_every_s}
        | {k: cost[k] for k in ("cpu_us_per_event", "freshness_p50_s", "freshness_p99_s")}
    )


def staleness_sweep(
    log: EventLog,
    model: NextCategoryModel,
    intervals_s: Sequence[float],
    start: float,
    end: float = math.inf,
    store_factory: Callable[[], Store] | None = None,
    progress: bool = True,
    stream_flush_s: float = 1.0,
    allowed_lateness: float = 60.0,
) -> list[dict[str, Any]]:
    """Accuracy and feature age for each batch refresh interval, then for the stream.

    Each interval gets a fresh store from ``store_factory`` (by default a SQLite file in a
    temporary folder, removed with its files at the end).
    The last row is the stream (``refresh_interval_s`` 0): a :class:`StreamPipeline` that
    writes to its own store at least every ``stream_flush_s`` of event time, predictions
    read from that store (:func:`serve_from_pipeline`), so its accuracy, CPU per event and
    freshness at the log's real arrival rate come from the same run. ``right`` in each row
    says whether each evaluated event was predicted right (the same events, in the same
    order, in every row), for intervals on a difference
    (:func:`~mlinfra_kit.comparison.accuracy_difference`)."""
    from mlinfra_kit.progress import bar as progress_bar

    events = _evaluated(log, start, end)
    if not events:
        raise ValueError(f"no events in [{start}, {end}): pick a start inside the log")
    if any(i <= 0 for i in intervals_s):
        raise ValueError(f"refresh intervals must be > 0 seconds, got {list(intervals_s)}")
    index = EventIndex(log.events, model.windows)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlinfra-features-") as folder:
        made = itertools.count()
        new_store = store_factory or (
            lambda: FeatureStore(os.path.join(folder, f"{next(made)}.db"))
        )
        intervals = [*sorted(intervals_s, reverse=True), 0.0]
        for interval in progress_bar(intervals, desc="refresh intervals", show=progress):
            store = new_store()
            try:
                if interval:
                    served = serve_from_batch(index, events, interval, store)
                    rows.append(_row("batch", interval, model, served))
                else:
                    pipeline = StreamPipeline(
                        StreamFeatures(model.windows, allowed_lateness=allowed_lateness),
                        store,
                        micro_batch=len(log.events),
                        flush_every_s=stream_flush_s,
                    )
                    rows.append(_stream_row(log, events, model, pipeline, stream_flush_s))
            finally:
                getattr(store, "close", lambda: None)()
    return rows


def ceiling_accuracy(log: EventLog, start: float, end: float = math.inf) -> float:
    """The share of events in the user's true current interest: what a model that knew
    every preference change at once would reach, by predicting it."""
    events = _evaluated(log, start, end)
    return sum(log.interest_at(e.user_id, e.event_time) == e.category for e in events) / len(events)
