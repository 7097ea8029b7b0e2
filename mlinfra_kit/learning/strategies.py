"""When does the model change? Five answers behind one interface.

A strategy predicts each sample as it arrives (``predict_one``) and learns from labels when
they arrive (``learn_one``), which may be long after the prediction: the evaluator
(:func:`~mlinfra_kit.learning.prequential`) decides when, so no strategy can peek.

- :class:`Offline`: train once on the first labels, never again;
- :class:`Periodic`: retrain every ``every`` labels on a sliding (or growing) window;
- :class:`DriftTriggered`: retrain when ADWIN sees the error rate change, or a KS test
  sees the inputs change; each retrain is logged with its reason;
- :class:`Online`: a River model that learns from every label (``learn_one``);
- :class:`OnlineMiniBatch`: a PyTorch model that takes an SGD step per mini-batch.

Each keeps ``retrains``, ``train_seconds`` and ``events`` (what happened, when, why).

Examples
--------
>>> from river import tree
>>> from mlinfra_kit.learning.learners import RiverBatch
>>> s = Periodic(RiverBatch(tree.HoeffdingTreeClassifier), every=50, window=100, initial=100)
>>> for t in range(300):
...     s.learn_one({"x": float(t % 7)}, t % 7 > 3, t)
>>> [(e.t, e.kind) for e in s.events]
[(99, 'initial'), (149, 'retrain'), (199, 'retrain'), (249, 'retrain'), (299, 'retrain')]
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from mlinfra_kit.learning.learners import is_numeric_features

__all__ = [
    "DriftTriggered",
    "FitEvent",
    "Offline",
    "Online",
    "OnlineMiniBatch",
    "Periodic",
    "Strategy",
]


@dataclass(frozen=True)
class FitEvent:
    """A fit of a strategy's model (the initial one, or a retrain): at stream time ``t``,
    on ``samples`` labels, because of ``reason``, taking ``seconds``."""

    t: int
    kind: Literal["initial", "retrain"]
    reason: str
    samples: int
    seconds: float


class Strategy(ABC):
    """A way of keeping a model current on a stream: ``predict_one``, ``learn_one`` (a
    label arrives), and the log of its fits in ``events``."""

    name = "strategy"

    def __init__(self) -> None:
        self.events: list[FitEvent] = []
        self.train_seconds = 0.0

    @property
    def retrains(self) -> int:
        """Fits after the initial one."""
        return sum(e.kind == "retrain" for e in self.events)

    @abstractmethod
    def predict_one(self, x: Any) -> Any: ...

    @abstractmethod
    def learn_one(self, x: Any, y: Any, t: int) -> None:
        """A label arrived at stream time ``t`` (the index of the latest sample)."""

    def _timed_fit(self, learner: Any, X: list, y: list, t: int, kind: str, reason: str):
        tic = time.perf_counter()
        learner.fit(X, y)
        seconds = time.perf_counter() - tic
        self.train_seconds += seconds
        self.events.append(FitEvent(t, kind, reason, len(X), seconds))


class _Windowed(Strategy):
    """Keeps the last ``window`` labelled samples and fits a learner on them."""

    def __init__(self, learner: Any, initial: int, window: int | None):
        super().__init__()
        if initial < 1:
            raise ValueError(f"initial must be at least 1 label, got {initial}")
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1 (or None: everything), got {window}")
        self.learner = learner
        self.initial = initial
        self.window = window
        self.buffer: deque = deque(maxlen=window)
        self.labels_seen = 0
        self.fitted = False

    def predict_one(self, x: Any) -> Any:
        return self.learner.predict_one(x) if self.fitted else None

    def _fit(self, t: int, kind: str, reason: str) -> None:
        X, y = [s[0] for s in self.buffer], [s[1] for s in self.buffer]
        self._timed_fit(self.learner, X, y, t, kind, reason)
        self.fitted = True

    def learn_one(self, x: Any, y: Any, t: int) -> None:
        self.buffer.append((x, y))
        self.labels_seen += 1
        if not self.fitted and self.labels_seen >= self.initial:
            self._fit(t, "initial", f"first {self.initial} labels")
        elif self.fitted:
            self._after_label(x, y, t)

    def _after_label(self, x: Any, y: Any, t: int) -> None:
        """Hook: decide whether to retrain."""


class Offline(_Windowed):
    """Train once on the first ``initial`` labels; the model never changes again."""

    name = "offline"

    def __init__(self, learner: Any, initial: int = 1000):
        super().__init__(learner, initial, window=initial)


class Periodic(_Windowed):
    """Retrain every ``every`` labels on the last ``window`` labels (``None``: all so far)."""

    name = "periodic"

    def __init__(
        self, learner: Any, every: int = 1000, window: int | None = 1000, initial: int = 1000
    ):
        if every < 1:
            raise ValueError(f"every must be at least 1 label, got {every}")
        super().__init__(learner, initial, window)
        self.every = every
        self._since = 0

    def _after_label(self, x: Any, y: Any, t: int) -> None:
        self._since += 1
        if self._since >= self.every:
            self._since = 0
            self._fit(t, "retrain", f"schedule: every {self.every} labels")


class DriftTriggered(_Windowed):
    """Retrain when monitoring says the world changed.

    - **Errors**: each arriving label tells whether the deployed model was right; River's
      ADWIN watches that 0/1 stream and fires when its mean shifts.
    - **Inputs**: every ``test_every`` predictions, a two-sample Kolmogorov-Smirnov test
      (SciPy) compares each numeric feature of the recent inputs with the training window;
      a p-value below ``alpha`` divided by the number of features (Bonferroni) fires.

    After a detection, the strategy waits for ``min_window`` new labels and retrains on
    those alone: labels from before the detection belong to the old concept, and training
    on them would relearn it. When ``retrain_window`` new labels have arrived it retrains
    once more: a quick fix first, then a model trained on enough data.
    """

    name = "drift-triggered"

    def __init__(
        self,
        learner: Any,
        initial: int = 1000,
        retrain_window: int = 1000,
        min_window: int = 200,
        delta: float = 0.002,
        input_test: bool = True,
        test_every: int = 250,
        test_window: int = 500,
        alpha: float = 1e-3,
    ):
        if not 0 < alpha < 1 or not 0 < delta < 1:
            raise ValueError(f"alpha and delta must be in (0, 1), got {alpha}, {delta}")
        if not 1 <= min_window <= retrain_window or test_every < 1 or test_window < 2:
            raise ValueError(
                "need 1 <= min_window <= retrain_window, test_every >= 1 and test_window >= 2"
            )
        super().__init__(learner, initial, window=max(initial, retrain_window))
        self.retrain_window = retrain_window
        self.min_window = min_window
        self.delta = delta
        self.input_test = input_test
        self.test_every = test_every
        self.test_window = test_window
        self.alpha = alpha
        self._new_detector()
        self._recent_inputs: deque = deque(maxlen=test_window)
        self._reference: list = []
        self._fresh = 0  # labels that arrived since the last detected change
        self._predictions = 0
        self._pending_reason: str | None = None
        self._follow_up = False

    def _new_detector(self) -> None:
        from river import drift

        self.detector = drift.ADWIN(delta=self.delta)

    def _fit(self, t: int, kind: str, reason: str) -> None:
        keep = len(self.buffer)
        if kind == "retrain":
            keep = min(self.retrain_window, self._fresh)
            while len(self.buffer) > keep:
                self.buffer.popleft()
        self._follow_up = kind == "retrain" and keep < self.retrain_window
        super()._fit(t, kind, reason)
        self._reference = [s[0] for s in self.buffer]
        self._recent_inputs.clear()
        self._new_detector()
        self._pending_reason = None

    def predict_one(self, x: Any) -> Any:
        if self.fitted and self.input_test and is_numeric_features(x):
            self._recent_inputs.append(x)
            self._predictions += 1
            if (
                self._predictions % self.test_every == 0
                and self._pending_reason is None
                and len(self._recent_inputs) == self.test_window
            ):
                self._pending_reason = self._inputs_changed()
                if self._pending_reason:
                    self._fresh = 0
        return super().predict_one(x)

    def _inputs_changed(self) -> str | None:
        from scipy.stats import ks_2samp

        reference = [x for x in self._reference if is_numeric_features(x)]
        if len(reference) < 2:
            return None
        features = sorted(reference[0])
        threshold = self.alpha / len(features)
        for name in features:
            with warnings.catch_warnings():
                # When the exact p-value cannot be computed, SciPy uses the asymptotic one
                # and warns; that fallback is what this test wants, so it stays quiet.
                warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
                p = ks_2samp(
                    [x[name] for x in reference], [x[name] for x in self._recent_inputs]
                ).pvalue
            if p < threshold:
                return f"inputs: KS test on {name!r}, p={p:.1e}"
        return None

    def _after_label(self, x: Any, y: Any, t: int) -> None:
        self._fresh += 1
        if self._pending_reason is None:
            self.detector.update(float(self.learner.predict_one(x) != y))
            if self.detector.drift_detected:
                self._pending_reason = (
                    f"errors: ADWIN, error rate now {self.detector.estimation:.2f}"
                )
                self._fresh = 0
        if self._pending_reason and self._fresh >= self.min_window:
            self._fit(t, "retrain", self._pending_reason)
        elif self._follow_up and self._fresh >= self.retrain_window:
            self._fit(t, "retrain", f"follow-up: {self._fresh} labels since the change")


class Online(Strategy):
    """A River model (or pipeline) that learns from every label as it arrives."""

    name = "online"

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def predict_one(self, x: Any) -> Any:
        return self.model.predict_one(x)

    def learn_one(self, x: Any, y: Any, t: int) -> None:
        tic = time.perf_counter()
        self.model.learn_one(x, y)
        self.train_seconds += time.perf_counter() - tic


class OnlineMiniBatch(Strategy):
    """A PyTorch learner updated by SGD every ``batch_size`` labels (``partial_fit``)."""

    name = "online-minibatch"

    def __init__(self, learner: Any, batch_size: int = 32):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.learner = learner
        self.batch_size = batch_size
        self._batch: list = []

    def predict_one(self, x: Any) -> Any:
        return self.learner.predict_one(x)

    def learn_one(self, x: Any, y: Any, t: int) -> None:
        self._batch.append((x, y))
        if len(self._batch) >= self.batch_size:
            X, labels = [s[0] for s in self._batch], [s[1] for s in self._batch]
            tic = time.perf_counter()
            self.learner.partial_fit(X, labels)
            self.train_seconds += time.perf_counter() - tic
            self._batch = []
