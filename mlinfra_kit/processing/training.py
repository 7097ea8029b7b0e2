"""Point-in-time correct training sets: features as they were when each event happened.

Joining today's features to last month's labels leaks the future into training (the model
learns from information it will never have when it predicts). Here each row gets the
features computed only from the user's events *strictly before* the labelled event.

Examples
--------
>>> from mlinfra_kit.processing.events import Event
>>> evs = [Event("a", "u", "mlops", "click", 10.0), Event("b", "u", "mlops", "view", 20.0)]
>>> rows = point_in_time_rows(evs, windows=(60,))
>>> rows[0]["features"]["clicks_60s"], rows[1]["features"]["clicks_60s"], rows[1]["label"]
(0, 1, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import DEFAULT_WINDOWS, EventIndex

__all__ = ["point_in_time_rows"]


def point_in_time_rows(
    events: Iterable[Event],
    windows: Sequence[float] = DEFAULT_WINDOWS,
    label: Callable[[Event], Any] = lambda e: e.kind == "click",
) -> list[dict[str, Any]]:
    """One row per event: ``{"event_id", "user_id", "event_time", "category", "features",
    "label"}``, the features from the user's earlier events only."""
    ordered = sorted(events, key=lambda e: (e.event_time, e.event_id))
    index = EventIndex(ordered, windows)
    rows = []
    for e in ordered:
        # Strictly before: an event at the same instant is not yet known.
        features = index.features(e.user_id, math.nextafter(e.event_time, -math.inf))
        rows.append(
            {
                "event_id": e.event_id,
                "user_id": e.user_id,
                "event_time": e.event_time,
                "category": e.category,
                "features": features,
                "label": label(e),
            }
        )
    return rows
