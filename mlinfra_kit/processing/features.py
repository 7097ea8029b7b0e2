"""Per-user features over sliding windows of event time, computed in batch or as a stream.

Both pipelines share one definition (:func:`compute_features`): for each window ``w``
(seconds), the events of each category and the clicks in ``(t - w, t]``, the click rate,
the seconds since the last event, and the top category of the longest window. So a batch
refresh and the stream agree exactly when they have seen the same events, and any
difference in a model's answers comes from freshness alone.

Examples
--------
>>> from mlinfra_kit.processing.events import Event
>>> evs = [Event("a", "u", "mlops", "click", 10.0), Event("b", "u", "other", "view", 50.0)]
>>> f = compute_features(evs, at=60.0, windows=(30,))
>>> f["count_30s_other"], f["clicks_30s"], f["recency_s"], f["top_category"]
(1, 0, 10.0, 'other')
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlinfra_kit.processing.events import CATEGORIES, Event

__all__ = [
    "DEFAULT_WINDOWS",
    "EventIndex",
    "StreamFeatures",
    "batch_features",
    "compute_features",
    "feature_names",
]

DEFAULT_WINDOWS = (300, 3600)


def _check_windows(windows: Sequence[float]) -> tuple[float, ...]:
    if not windows or any(w <= 0 for w in windows):
        raise ValueError(f"windows must be positive durations in seconds, got {windows}")
    return tuple(sorted(windows))


def feature_names(windows: Sequence[float] = DEFAULT_WINDOWS) -> list[str]:
    names = []
    for w in _check_windows(windows):
        names += [f"count_{w:g}s_{c}" for c in CATEGORIES]
        names += [f"clicks_{w:g}s", f"click_rate_{w:g}s"]
    return [*names, "recency_s", "top_category"]


_CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}


def compute_features(
    events: Iterable[Event], at: float, windows: Sequence[float] = DEFAULT_WINDOWS
) -> dict[str, Any]:
    """The features of one user's ``events`` as of time ``at`` (events after ``at`` are
    ignored: they have not happened yet). One pass over the events, any order."""
    windows = _check_windows(windows)
    starts = [at - w for w in windows]  # an event is inside window k when t > starts[k]
    counts = [[0] * len(CATEGORIES) for _ in windows]
    totals, clicks = [0] * len(windows), [0] * len(windows)
    last = None
    for e in events:
        t = e.event_time
        if t > at:
            continue
        if last is None or t > last:
            last = t
        c = _CATEGORY_INDEX.get(e.category)
        click = e.kind == "click"
        for k in range(len(windows) - 1, -1, -1):  # longest first; shorter ones nest inside
            if t <= starts[k]:
                break
            totals[k] += 1
            clicks[k] += click
            if c is not None:
                counts[k][c] += 1
    features: dict[str, Any] = {}
    for k, w in enumerate(windows):
        for i, category in enumerate(CATEGORIES):
            features[f"count_{w:g}s_{category}"] = counts[k][i]
        features[f"clicks_{w:g}s"] = clicks[k]
        features[f"click_rate_{w:g}s"] = clicks[k] / totals[k] if totals[k] else 0.0
    features["recency_s"] = at - last if last is not None else None
    longest = dict(zip(CATEGORIES, counts[-1], strict=True))
    features["top_category"] = (
        max(sorted(longest), key=longest.get) if any(longest.values()) else None
    )
    return features


def _window_slice(
    times: list[float], events: list[Event], at: float, longest: float
) -> list[Event]:
    """The events of a time-sorted history that can matter at ``at``: those inside the
    longest window, plus the one just before it (for the recency of an idle user)."""
    end = bisect.bisect_right(times, at)
    start = bisect.bisect_right(times, at - longest)
    return events[max(start - 1, 0) : end]


class EventIndex:
    """Every user's events sorted by event time, so the features of any user at any
    moment cost a binary search and the events of one window, not a scan of the log.

    This is how a batch job reads a log partitioned by user and time; it gives exactly
    what :func:`compute_features` gives over the whole history.

    Examples
    --------
    >>> from mlinfra_kit.processing.events import Event
    >>> index = EventIndex([Event("a", "u", "mlops", "click", 10.0)], windows=(30,))
    >>> index.features("u", 20.0)["clicks_30s"], index.features("u", 50.0)["clicks_30s"]
    (1, 0)
    """

    def __init__(self, events: Iterable[Event] = (), windows: Sequence[float] = DEFAULT_WINDOWS):
        self.windows = _check_windows(windows)
        self._times: dict[str, list[float]] = {}
        self._events: dict[str, list[Event]] = {}
        for e in sorted(events, key=lambda e: (e.event_time, e.event_id)):
            self._times.setdefault(e.user_id, []).append(e.event_time)
            self._events.setdefault(e.user_id, []).append(e)

    @property
    def users(self) -> list[str]:
        return sorted(self._events)

    def features(self, user_id: str, at: float) -> dict[str, Any]:
        """``user_id``'s features as of ``at`` (a user with no events yet gets the empty
        features: zero counts, no recency)."""
        if user_id not in self._times:
            return compute_features((), at, self.windows)
        return compute_features(
            _window_slice(self._times[user_id], self._events[user_id], at, self.windows[-1]),
            at,
            self.windows,
        )

    def snapshot(self, at: float) -> dict[str, dict[str, Any]]:
        """Every user with an event by ``at``, with features as of ``at``: a batch refresh."""
        return {u: self.features(u, at) for u, times in self._times.items() if times[0] <= at}


@dataclass
class StreamFeatures:
    """Keeps every user's features up to date as events arrive, one at a time.

    State per user is the events inside the longest window (plus the allowed lateness),
    in event-time order; older ones are evicted as the watermark (the latest event time
    seen) advances. An event is applied at most once (by ``event_id``), so a redelivered
    event never double counts. An event older than ``watermark - allowed_lateness`` is
    too late: it is counted in ``dropped_late`` and not applied.
    """

    windows: Sequence[float] = DEFAULT_WINDOWS
    allowed_lateness: float = 60.0
    watermark: float = float("-inf")
    applied: int = 0
    duplicates: int = 0
    dropped_late: int = 0
    _events: dict[str, list[Event]] = field(default_factory=dict, repr=False)
    _times: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self):
        self.windows = _check_windows(self.windows)
        if self.allowed_lateness < 0:
            raise ValueError(f"allowed_lateness must be >= 0, got {self.allowed_lateness}")

    def process(self, event: Event) -> bool:
        """Apply ``event``; False if it was a duplicate or too late."""
        if not isinstance(event, Event):
            raise TypeError(f"expected an Event, got {type(event).__name__}")
        if event.event_id in self._seen:
            self.duplicates += 1
            return False
        if event.event_time < self.watermark - self.allowed_lateness:
            self.dropped_late += 1
            return False
        self._seen.add(event.event_id)
        times = self._times.setdefault(event.user_id, [])
        i = bisect.bisect_right(times, event.event_time)
        times.insert(i, event.event_time)
        self._events.setdefault(event.user_id, []).insert(i, event)
        self.applied += 1
        if event.event_time > self.watermark:
            self.watermark = event.event_time
            self._evict(event.user_id)
        return True

    def _evict(self, user_id: str) -> None:
        horizon = self.watermark - self.windows[-1] - self.allowed_lateness
        times = self._times[user_id]
        cut = bisect.bisect_right(times, horizon)
        if cut:
            del times[:cut]
            del self._events[user_id][:cut]

    def features(self, user_id: str, at: float | None = None) -> dict[str, Any]:
        """``user_id``'s features as of ``at`` (default: the watermark)."""
        if user_id not in self._events:
            raise KeyError(f"no events seen for user {user_id!r}")
        at = self.watermark if at is None else at
        return compute_features(
            _window_slice(self._times[user_id], self._events[user_id], at, self.windows[-1]),
            at,
            self.windows,
        )

    @property
    def users(self) -> list[str]:
        return sorted(self._events)

    def matches_batch(self, events: Iterable[Event]) -> bool:
        """Whether every user's features at the watermark equal what the batch job
        (:func:`batch_features`, same windows) computes from ``events``."""
        at = self.watermark
        return all(
            self.features(u, at) == f for u, f in batch_features(events, at, self.windows).items()
        )

    def __contains__(self, user_id: object) -> bool:
        """Whether an event of ``user_id`` has been applied."""
        return user_id in self._events


def batch_features(
    events: Iterable[Event], at: float, windows: Sequence[float] = DEFAULT_WINDOWS
) -> dict[str, dict[str, Any]]:
    """Every user's features as of ``at``, recomputed from the whole log (a batch job)."""
    return EventIndex(events, windows).snapshot(at)
