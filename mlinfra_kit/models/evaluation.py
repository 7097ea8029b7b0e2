"""Classification metrics without a heavy dependency: accuracy, macro and weighted F1,
per class precision and recall, and the confusion matrix.

Macro F1 averages the classes' F1 with equal weight, so a model that ignores a small
class (here ``mlops``) is penalised even when its accuracy looks fine. Weighted F1
weighs each class's F1 by its support (the figure the course quotes for its models).

Examples
--------
>>> ev = evaluate(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b"])
>>> ev.accuracy
0.75
>>> round(ev.macro_f1, 3), round(ev.weighted_f1, 3)
(0.733, 0.733)
>>> ev.confusion
[[1, 1], [0, 2]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mlinfra_kit.comparison import Comparison

__all__ = ["Evaluation", "evaluate", "score_difference"]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix of one
    set of predictions."""

    labels: list[str]
    accuracy: float
    macro_f1: float
    per_class: list[dict[str, Any]]
    confusion: list[list[int]]
    weighted_f1: float = math.nan

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Accuracy, macro and weighted F1, and each class's precision, recall and F1,
        flat and snake_case for recording."""
        out = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}weighted_f1": self.weighted_f1,
        }
        for row in self.per_class:
            name = row["tag"].replace("-", "_")
            for measure in ("f1", "precision", "recall"):
                out[f"{prefix}{measure}_{name}"] = row[measure]
        return out


def _safe_ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def evaluate(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> Evaluation:
    """Compare true and predicted labels; ``labels`` fixes the order of rows and columns."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if not y_true:
        raise ValueError("nothing to evaluate: y_true is empty")
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({y for y in (*y_true, *y_pred) if y not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not in labels={list(labels)}")
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[index[t]][index[p]] += 1
    per_class: list[dict[str, Any]] = []
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        predicted = sum(confusion[r][i] for r in range(k))
        support = sum(confusion[i])
        precision, recall = _safe_ratio(tp, predicted), _safe_ratio(tp, support)
        f1 = _safe_ratio(2 * precision * recall, precision + recall)
        per_class.append(
            {"tag": label, "precision": precision, "recall": recall, "f1": f1, "support": support}
        )
    accuracy = sum(confusion[i][i] for i in range(k)) / len(y_true)
    macro_f1 = sum(row["f1"] for row in per_class) / k
    weighted_f1 = sum(row["f1"] * row["support"] for row in per_class) / len(y_true)
    return Evaluation(list(labels), accuracy, macro_f1, per_class, confusion, weighted_f1)


def score_difference(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    against: Sequence[str] | float,
    metric: str = "weighted_f1",
    names: tuple[str, str] = ("reference", "model"),
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """How much better ``y_pred`` scores than ``against`` on ``metric`` (an
    :class:`Evaluation` field), with a 95 % bootstrap interval over the evaluated items:
    ``against`` is another model's predictions on the same items (paired: each resample
    scores both on the same items), or a fixed figure (a published score).

    A score on 191 projects carries a sampling error of a few points; this says whether a
    difference is larger than that.

    >>> truth = ["a"] * 50 + ["b"] * 50
    >>> better = ["a"] * 50 + ["b"] * 45 + ["a"] * 5
    >>> worse = ["a"] * 40 + ["b"] * 10 + ["b"] * 45 + ["a"] * 5
    >>> c = score_difference(truth, better, ["a", "b"], worse, metric="accuracy")
    >>> round(c.estimate, 2), c.verdict(at_least=0.0)
    (0.1, 'held')
    """
    from mlinfra_kit.comparison import bootstrap_difference

    if metric not in ("accuracy", "macro_f1", "weighted_f1"):
        raise ValueError(f"metric must be accuracy, macro_f1 or weighted_f1, got {metric!r}")
    truth, predicted = list(y_true), list(y_pred)
    if len(truth) != len(predicted):
        raise ValueError(f"y_true has {len(truth)} labels but y_pred has {len(predicted)}")
    other = None if isinstance(against, int | float) else list(against)
    if other is not None and len(other) != len(truth):
        raise ValueError(f"against has {len(other)} predictions for {len(truth)} items")

    def score(items: Sequence[str], idx: Sequence[int]) -> float:
        picked = [truth[i] for i in idx]
        return float(getattr(evaluate(picked, [items[i] for i in idx], labels), metric))

    def both(idx: Sequence[int]) -> tuple[float, float]:
        a = score(other, idx) if other is not None else float(cast(float, against))
        return a, score(predicted, idx)

    return bootstrap_difference(len(truth), both, names=names, resamples=resamples, seed=seed)
