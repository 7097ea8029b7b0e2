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

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix of one
    set of predictions."""

    labels: list[str]
    accuracy: float
    macro_f1: float
    per_class: list[dict]
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
    per_class = []
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
