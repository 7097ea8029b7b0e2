"""A seeded event simulator: users whose interests drift and burst over time.

Each user prefers one item category at a time; the preference jumps to another category
at random moments (``drift_per_hour`` jumps per user per hour on average). Users view items
at ``events_per_user_per_hour``, mostly of the preferred category, and click the
preferred ones far more often; with probability ``burstiness`` an event starts a burst of
quick follow-ups. The simulator is the ground truth: :meth:`EventLog.interest_at` says
what a user preferred at any moment, so a notebook can say how stale a feature was.

Examples
--------
>>> log = simulate_events(n_users=5, duration_s=3600, seed=1)
>>> all(a.event_time <= b.event_time for a, b in zip(log.events, log.events[1:]))
True
>>> log.interest_at("user-0", 0.0) in CATEGORIES
True
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

__all__ = ["CATEGORIES", "Event", "EventLog", "simulate_events"]

CATEGORIES = ("computer-vision", "natural-language-processing", "mlops", "other")


@dataclass(frozen=True)
class Event:
    """One user action, stamped with the time it happened (event time, in seconds)."""

    event_id: str
    user_id: str
    category: str
    kind: str  # "view" or "click"
    event_time: float


@dataclass(frozen=True)
class EventLog:
    """A simulated event log in time order, with each user's true interest over time
    (``interest_at``) for judging features against the truth."""

    events: tuple[Event, ...]
    # Per user: times at which the preference changed, and the preference from then on.
    _changes: dict[str, tuple[tuple[float, ...], tuple[str, ...]]]

    @property
    def users(self) -> list[str]:
        return sorted(self._changes)

    def interest_at(self, user_id: str, t: float) -> str:
        """The category ``user_id`` preferred at time ``t`` (the ground truth)."""
        if user_id not in self._changes:
            raise ValueError(f"unknown user {user_id!r}")
        times, prefs = self._changes[user_id]
        return prefs[max(0, bisect.bisect_right(times, t) - 1)]


def simulate_events(
    n_users: int = 100,
    duration_s: float = 6 * 3600,
    events_per_user_per_hour: float = 30.0,
    drift_per_hour: float = 0.5,
    burstiness: float = 0.1,
    click_rate_preferred: float = 0.3,
    click_rate_other: float = 0.03,
    focus: float = 0.7,
    seed: int = 0,
) -> EventLog:
    """Simulate ``n_users`` users for ``duration_s`` seconds of event time."""
    if n_users < 1 or duration_s <= 0 or events_per_user_per_hour <= 0:
        raise ValueError("need n_users >= 1, duration_s > 0 and events_per_user_per_hour > 0")
    for name, p in (
        ("burstiness", burstiness),
        ("focus", focus),
        ("click_rate_preferred", click_rate_preferred),
        ("click_rate_other", click_rate_other),
    ):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    if drift_per_hour < 0:
        raise ValueError(f"drift_per_hour must be >= 0, got {drift_per_hour}")
    rng = random.Random(seed)
    events: list[Event] = []
    changes: dict[str, tuple[tuple[float, ...], tuple[str, ...]]] = {}
    for u in range(n_users):
        user = f"user-{u}"
        times, prefs = [0.0], [rng.choice(CATEGORIES)]
        t = 0.0
        while drift_per_hour > 0:
            t += rng.expovariate(drift_per_hour / 3600)
            if t >= duration_s:
                break
            times.append(t)
            prefs.append(rng.choice([c for c in CATEGORIES if c != prefs[-1]]))
        changes[user] = (tuple(times), tuple(prefs))
        t, n = 0.0, 0
        while True:
            t += rng.expovariate(events_per_user_per_hour / 3600)
            if t >= duration_s:
                break
            burst = [t] + (
                [t + rng.uniform(1, 30) for _ in range(rng.randint(2, 6))]
                if rng.random() < burstiness
                else []
            )
            for when in burst:
                if when >= duration_s:
                    continue
                preferred = prefs[bisect.bisect_right(times, when) - 1]
                category = preferred if rng.random() < focus else rng.choice(CATEGORIES)
                rate = click_rate_preferred if category == preferred else click_rate_other
                kind = "click" if rng.random() < rate else "view"
                events.append(Event(f"{user}-{n}", user, category, kind, when))
                n += 1
    events.sort(key=lambda e: (e.event_time, e.event_id))
    return EventLog(tuple(events), changes)
