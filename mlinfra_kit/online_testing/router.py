"""Sticky, deterministic traffic splitting by a salted hash of (experiment, user).

A user's position on [0, 1) comes from a hash, so the same user always gets the same
variant in an experiment (no state to store), and two experiments with different names
split users independently. Variants occupy consecutive segments of [0, 1) in a fixed
order, so when a canary's weight grows from 5 % to 25 %, only users between 0.05 and 0.25
move, from the baseline to the candidate; nobody moves back and forth.

Examples
--------
>>> router = Router("new-model", {"candidate": 0.1, "baseline": 0.9})
>>> router.assign("user-42") == router.assign("user-42")
True
>>> wider = router.with_weights({"candidate": 0.5, "baseline": 0.5})
>>> all(wider.assign(u) == "candidate" for u in map(str, range(1000))
...     if router.assign(u) == "candidate")
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

__all__ = ["Router", "bucket", "check_weights"]


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights per variant: non-negative numbers summing to 1."""
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(
            "weights must be a non-empty dict of variant -> share, "
            "e.g. {'baseline': 0.9, 'candidate': 0.1}"
        )
    clean = {}
    for name, w in weights.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"variant names must be non-empty strings, got {name!r}")
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of {name!r} must be a number >= 0, got {w!r}")
        clean[name] = float(w)
    total = sum(clean.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, they sum to {total:.6g}: {clean}")
    return clean


def bucket(experiment: str, user_id: str, salt: str = "") -> float:
    """The user's position in [0, 1) for this experiment (uniform, deterministic)."""
    digest = hashlib.sha256(f"{experiment}\x1f{salt}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class Router:
    """Assign users to variants with the given weights, stickily.

    The order of ``weights`` is the order of the segments: put the variant whose share
    will grow (the candidate) first, so growing it moves users only one way.
    """

    def __init__(self, experiment: str, weights: Mapping[str, float], salt: str = ""):
        if not isinstance(experiment, str) or not experiment:
            raise ValueError("experiment must be a non-empty name")
        self.experiment = experiment
        self.weights = check_weights(weights)
        self.salt = salt
        self._edges = []
        edge = 0.0
        for name, w in self.weights.items():
            edge += w
            self._edges.append((edge, name))

    def assign(self, user_id: object) -> str:
        position = bucket(self.experiment, str(user_id), self.salt)
        for edge, name in self._edges:
            if position < edge:
                return name
        return next(name for _, name in reversed(self._edges) if self.weights[name] > 0)

    def with_weights(self, weights: Mapping[str, float]) -> Router:
        """The same experiment with new weights (variants keep their order)."""
        unknown = set(weights) - set(self.weights)
        if unknown:
            raise ValueError(
                f"unknown variant(s) {sorted(unknown)}; this experiment has {list(self.weights)}"
            )
        ordered = {name: weights.get(name, 0.0) for name in self.weights}
        return Router(self.experiment, ordered, self.salt)

    def __repr__(self) -> str:
        return f"Router({self.experiment!r}, {self.weights})"
