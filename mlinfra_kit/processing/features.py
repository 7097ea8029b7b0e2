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


def compute_features(events: Iterable[Event], at: float,
                     windows: Sequence[float] = DEFAULT_WINDOWS) -> dict[str, Any]:
    """The features of one user's ``events`` as of time ``at`` (events after ``at`` are
    ignored: they have not happened yet)."""
    windows = _check_windows(windows)
    past = [e for e in events if e.event_time <= at]
    features: dict[str, Any] = {}
    for w in windows:
        inside = [e for e in past if e.event_time > at - w]
        for c in CATEGORIES:
            features[f"count_{w:g}s_{c}"] = sum(e.category == c for e in inside)
        clicks = sum(e.kind == "click" for e in inside)
        features[f"clicks_{w:g}s"] = clicks
        features[f"click_rate_{w:g}s"] = clicks / len(inside) if inside else 0.0
    features["recency_s"] = at - max(e.event_time for e in past) if past else None
    longest = windows[-1]
    counts = {c: features[f"count_{longest:g}s_{c}"] for c in CATEGORIES}
    features["top_category"] = (max(sorted(counts), key=counts.get)
                                if any(counts.values()) else None)
    return features


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
        return compute_features(self._events[user_id], at, self.windows)

    @property
    def users(self) -> list[str]:
        return sorted(self._events)


def batch_features(events: Iterable[Event], at: float,
                   windows: Sequence[float] = DEFAULT_WINDOWS) -> dict[str, dict[str, Any]]:
    """Every user's features as of ``at``, recomputed from the whole log (a batch job)."""
    by_user: dict[str, list[Event]] = {}
    for e in events:
        if e.event_time <= at:
            by_user.setdefault(e.user_id, []).append(e)
    return {user: compute_features(evs, at, windows) for user, evs in by_user.items()}
