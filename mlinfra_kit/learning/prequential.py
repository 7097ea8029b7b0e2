"""Prequential (test-then-train) evaluation, with labels that arrive late.

Each sample is first predicted, then, once its label has arrived, learned from. A label of
the sample at time ``t`` arrives ``label_delay`` samples later: it is handed to the
strategy right after the prediction of sample ``t + label_delay``. A strategy therefore
never trains on a sample before predicting it, nor sees a label before it is due.

Examples
--------
>>> from river import tree
>>> from mlinfra_kit.learning import Online, drift_stream
>>> result = prequential(drift_stream(n=2000, drifts=(1000,)),
...                      Online(tree.HoeffdingTreeClassifier()), progress=False)
>>> 0.5 < result.accuracy <= 1.0, result.labels_learned
(True, 2000)
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlinfra_kit.learning.strategies import FitEvent, Strategy
from mlinfra_kit.learning.streams import Stream
from mlinfra_kit.progress import bar as progress_bar

__all__ = ["PrequentialResult", "compare", "prequential"]


@dataclass(frozen=True)
class PrequentialResult:
    """What a strategy did on a stream: per-sample correctness, retrains and cost."""

    name: str
    correct: np.ndarray = field(repr=False)
    events: list[FitEvent] = field(repr=False)
    train_seconds: float
    seconds: float
    label_delay: int
    labels_learned: int

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def retrains(self) -> int:
        return sum(e.kind == "retrain" for e in self.events)

    @property
    def samples_per_s(self) -> float:
        return len(self.correct) / self.seconds if self.seconds > 0 else float("nan")

    def accuracy_between(self, start: int, stop: int | None = None) -> float:
        part = self.correct[start:stop]
        return float(part.mean()) if part.size else float("nan")

    def rolling(self, window: int = 500) -> np.ndarray:
        """Accuracy over the last ``window`` samples at each point (shorter at the start)."""
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        sums = np.cumsum(self.correct, dtype=float)
        shifted = np.concatenate([np.zeros(window), sums[:-window]])[: len(sums)]
        counts = np.minimum(np.arange(1, len(sums) + 1), window)
        return (sums - shifted) / counts

    def recovery_samples(
        self, drift_at: int, window: int = 500, tolerance: float = 0.02
    ) -> int | None:
        """Samples after ``drift_at`` until the rolling accuracy is back within
        ``tolerance`` of its level just before the drift; ``None`` if it never is."""
        if not 0 < drift_at < len(self.correct):
            raise ValueError(f"drift_at {drift_at} is outside the stream")
        before = self.accuracy_between(max(0, drift_at - window), drift_at)
        rolling = self.rolling(window)
        # Only windows that lie entirely after the drift count as "recovered".
        for t in range(drift_at + window - 1, len(rolling)):
            if rolling[t] >= before - tolerance:
                return t - drift_at
        return None

    def row(self, drift_at: int | None = None, window: int = 500, **extra: Any) -> dict[str, Any]:
        """A flat dict for a table; with ``drift_at``, also the accuracy in the ``window``
        before the drift, the accuracy after it, and the recovery time."""
        row = {"strategy": self.name, **extra, "accuracy": self.accuracy}
        if drift_at is not None:
            row.update(
                before_drift=self.accuracy_between(max(0, drift_at - window), drift_at),
                after_drift=self.accuracy_between(drift_at),
                recovery_samples=self.recovery_samples(drift_at, window),
            )
        row.update(
            retrains=self.retrains,
            train_seconds=self.train_seconds,
            samples_per_s=self.samples_per_s,
        )
        return row


def prequential(
    stream: Stream,
    strategy: Strategy,
    label_delay: int = 0,
    progress: bool = True,
    name: str | None = None,
) -> PrequentialResult:
    """Run ``strategy`` over ``stream``: predict each sample, learn when labels arrive."""
    if not isinstance(stream, Stream):
        raise TypeError("stream must be a Stream (see mlinfra_kit.learning.from_samples)")
    if len(stream) == 0:
        raise ValueError("the stream is empty")
    if label_delay < 0:
        raise ValueError(f"label_delay must be 0 or more samples, got {label_delay}")
    correct = np.zeros(len(stream), dtype=bool)
    pending: deque = deque()
    learned = 0
    tic = time.perf_counter()
    for t, (x, y) in enumerate(
        progress_bar(stream, desc=name or strategy.name, unit="sample", show=progress)
    ):
        correct[t] = strategy.predict_one(x) == y
        pending.append((t + label_delay, x, y))
        while pending and pending[0][0] <= t:
            _, x_due, y_due = pending.popleft()
            strategy.learn_one(x_due, y_due, t)
            learned += 1
    seconds = time.perf_counter() - tic
    return PrequentialResult(
        name or strategy.name,
        correct,
        list(strategy.events),
        strategy.train_seconds,
        seconds,
        label_delay,
        learned,
    )


def compare(
    stream: Stream, strategies: dict[str, Strategy], label_delay: int = 0, progress: bool = True
) -> dict[str, PrequentialResult]:
    """Run each strategy over the same stream; results keyed like ``strategies``."""
    if not strategies:
        raise ValueError("no strategies to compare")
    return {
        name: prequential(stream, s, label_delay, progress=progress, name=name)
        for name, s in strategies.items()
    }
