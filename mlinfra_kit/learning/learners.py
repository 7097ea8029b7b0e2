"""Models a strategy can (re)train on a window of labelled samples.

A *learner* has ``fit(X, y)`` (from scratch, on a window) and ``predict_one(x)``; an
incremental one also has ``partial_fit(X, y)`` (a few SGD steps on a mini-batch).

- :class:`RiverBatch` trains a fresh River model over a window: the "retrain" of a River
  pipeline, so batch and online strategies can use the same model family;
- :class:`TorchMLP` is a small PyTorch classifier of numeric features, trained with Adam
  from scratch by ``fit`` and incrementally by ``partial_fit``.

Examples
--------
>>> from river import tree
>>> X = [{"a": float(i % 10)} for i in range(200)]
>>> y = [x["a"] > 4 for x in X]
>>> learner = RiverBatch(lambda: tree.HoeffdingTreeClassifier(grace_period=20))
>>> learner.fit(X, y).predict_one({"a": 8.0})
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["RiverBatch", "TorchMLP", "is_numeric_features"]


def _check_window(X: Sequence[Any], y: Sequence[Any]) -> None:
    if len(X) != len(y):
        raise ValueError(f"X and y differ in length: {len(X)} samples, {len(y)} labels")
    if not len(X):
        raise ValueError("cannot train on an empty window: wait for labels first")


class RiverBatch:
    """Train ``make_model()`` from scratch on each window, ``epochs`` passes over it."""

    def __init__(self, make_model: Callable[[], Any], epochs: int = 1):
        self.make_model = make_model
        self.epochs = epochs

    def fit(self, X: Sequence[Any], y: Sequence[Any]) -> RiverBatch:
        _check_window(X, y)
        model = self.make_model()
        for _ in range(self.epochs):
            for xi, yi in zip(X, y, strict=True):
                model.learn_one(xi, yi)
        self.model_ = model
        return self

    def predict_one(self, x: Any) -> Any:
        return self.model_.predict_one(x)


class TorchMLP:
    """A one-hidden-layer MLP over numeric dict features, standardised with the first
    window's statistics. Classes are fixed by the first ``fit``; labels of a class it has
    not seen are skipped by ``partial_fit`` (and counted in ``unseen_labels_``).

    It trains and predicts on ``threads`` torch threads (one by default, as the tag model:
    beside another busy process, torch's default two threads made 03_learning's quick run
    take 132 s instead of 14 s)."""

    def __init__(
        self,
        hidden: int = 32,
        epochs: int = 20,
        lr: float = 1e-2,
        batch_size: int = 64,
        seed: int = 0,
        threads: int | None = 1,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        from mlinfra_kit.models.network import check_threads

        check_threads(threads)
        self.threads = threads

    def _matrix(self, X: Sequence[dict[str, float]]):
        import torch

        try:
            rows = [[float(x[k]) for k in self.features_] for x in X]
        except KeyError as err:
            raise ValueError(
                f"a sample lacks the feature {err.args[0]!r} the model was "
                f"trained with ({self.features_})"
            ) from None
        t = torch.tensor(rows, dtype=torch.float32)
        return (t - self.mean_) / self.std_

    def fit(self, X: Sequence[dict[str, float]], y: Sequence[Any]) -> TorchMLP:
        import torch
        from torch import nn

        _check_window(X, y)
        self.features_ = sorted(X[0])
        self.classes_ = sorted(set(y), key=str)
        raw = torch.tensor([[float(x[k]) for k in self.features_] for x in X])
        self.mean_, self.std_ = raw.mean(0), raw.std(0).clamp_min(1e-6)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net_ = nn.Sequential(
                nn.Linear(len(self.features_), self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, len(self.classes_)),
            )
        self.optimizer_ = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        self.unseen_labels_ = 0
        self._steps(X, y, self.epochs, generator)
        return self

    def partial_fit(self, X: Sequence[dict[str, float]], y: Sequence[Any]) -> TorchMLP:
        """One pass of SGD steps over a mini-batch: learning online, a batch at a time."""
        if not hasattr(self, "net_"):
            return self.fit(X, y)
        _check_window(X, y)
        self._steps(X, y, 1, None)
        return self

    def _steps(self, X, y, epochs: int, generator) -> None:
        from mlinfra_kit.models.network import torch_threads

        with torch_threads(self.threads):
            self._train(X, y, epochs, generator)

    def _train(self, X, y, epochs: int, generator) -> None:
        import torch

        index = {c: i for i, c in enumerate(self.classes_)}
        keep = [i for i, label in enumerate(y) if label in index]
        self.unseen_labels_ += len(y) - len(keep)
        if not keep:
            return
        inputs = self._matrix([X[i] for i in keep])
        targets = torch.tensor([index[y[i]] for i in keep])
        loss_fn = torch.nn.CrossEntropyLoss()
        self.net_.train()
        for _ in range(epochs):
            order = torch.randperm(len(keep), generator=generator)
            for start in range(0, len(keep), self.batch_size):
                batch = order[start : start + self.batch_size]
                self.optimizer_.zero_grad()
                loss_fn(self.net_(inputs[batch]), targets[batch]).backward()
                self.optimizer_.step()
        self.net_.eval()

    def predict_one(self, x: dict[str, float]) -> Any:
        import torch

        from mlinfra_kit.models.network import torch_threads

        if not hasattr(self, "net_"):
            return None
        with torch.inference_mode(), torch_threads(self.threads):
            logits = self.net_(self._matrix([x]))
        return self.classes_[int(logits.argmax())]


def is_numeric_features(x: Any) -> bool:
    """Whether ``x`` is a dict of finite numbers (what the input-drift test can compare)."""
    return isinstance(x, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in x.values()
    )
