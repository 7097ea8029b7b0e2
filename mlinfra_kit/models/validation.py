"""Evaluation a reviewer trusts: two models on the same folds, paired, with an interval.

One holdout of 191 projects is one draw: a model can win on it and lose on the next split.
:func:`cross_validate` trains both models on the same stratified folds (or, with
``kind="time"``, on the oldest projects and tests on the newest, the deployment question)
and compares them fold by fold (:func:`mlinfra_kit.comparison.paired`): the mean, the spread
and the worst fold of each, and an interval of the difference.

Each model is given as ``fit(train: Projects) -> model``, where the model has
``evaluate(texts, tags)`` (like :class:`~mlinfra_kit.models.TagClassifier` and
:class:`~mlinfra_kit.models.TfidfLogReg`): how it uses its training projects (a validation
split for early stopping, a refit) is its own business.

Examples
--------
>>> from mlinfra_kit.data import load_projects
>>> from mlinfra_kit.models import TfidfLogReg
>>> projects = load_projects("synthetic")[:200]
>>> words = lambda train: TfidfLogReg(ngrams=1).fit(train.texts, train.tags)
>>> pairs = lambda train: TfidfLogReg(ngrams=2).fit(train.texts, train.tags)
>>> cv = cross_validate(projects, words, pairs, folds=3, progress=False)
>>> len(cv.rows), sorted(cv.summary())[:2]
(3, ['a_mean', 'a_std'])
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.comparison import Comparison, paired
from mlinfra_kit.data.projects import Projects

__all__ = ["CrossValidation", "cross_validate", "stratified_folds"]


def stratified_folds(projects: Projects, folds: int = 5, seed: int = 0) -> list[set[int]]:
    """The project ids of each of ``folds`` folds, each tag dealt evenly over them after a
    seeded shuffle: every fold keeps the class balance, and every project is in one fold."""
    if folds < 2:
        raise ValueError(f"folds must be 2 or more, got {folds}")
    if len(projects) < folds:
        raise ValueError(f"{len(projects)} projects cannot make {folds} folds")
    rng = random.Random(seed)
    parts: list[set[int]] = [set() for _ in range(folds)]
    start = 0
    for tag in sorted(set(projects.tags)):
        ids = [p.id for p in projects if p.tag == tag]
        rng.shuffle(ids)
        for k, i in enumerate(ids):
            parts[(start + k) % folds].add(i)
        start += len(ids)  # the next tag starts where this one stopped: folds stay even
    return parts


@dataclass(frozen=True)
class CrossValidation:
    """Both models' scores per fold (``rows``) and their paired comparison (B minus A)."""

    names: tuple[str, str]
    metric: str
    rows: list[dict[str, Any]]
    comparison: Comparison

    def summary(self) -> dict[str, float]:
        """Mean, spread (standard deviation) and worst fold of each model, and the folds
        each won."""
        out: dict[str, float] = {}
        for side in ("a", "b"):
            scores = [r[side] for r in self.rows]
            out[f"{side}_mean"] = statistics.fmean(scores)
            out[f"{side}_std"] = statistics.stdev(scores) if len(scores) > 1 else 0.0
            out[f"{side}_worst"] = min(scores)
        out["b_wins"] = sum(r["b"] > r["a"] for r in self.rows)
        return out


def _split_by_ids(projects: Projects, held_out: set[int]) -> tuple[Projects, Projects]:
    """The projects outside ``held_out`` (to train) and those in it (to validate)."""
    return (
        projects.where(lambda p: p.id not in held_out),
        projects.where(lambda p: p.id in held_out),
    )


def cross_validate(
    projects: Projects,
    fit_a: Callable[[Projects], Any],
    fit_b: Callable[[Projects], Any],
    folds: int = 5,
    kind: str = "stratified",
    names: tuple[str, str] = ("reference", "model"),
    metric: str = "weighted_f1",
    seed: int = 0,
    holdout_fraction: float = 0.2,
    progress: bool = True,
    noise: float = 0.0,
) -> CrossValidation:
    """Train both models on the same training part of each fold and score them on its
    test part: ``kind="stratified"`` (``folds`` stratified folds, :func:`stratified_folds`)
    or ``kind="time"`` (one split: the oldest projects train, the newest
    ``holdout_fraction`` test). The comparison pairs the folds (a difference in
    ``metric``: B minus A); one fold gives no interval.

    ``noise`` is the comparison's noise floor: the difference one model shows against itself
    on the same fold. Training that is deterministic for its seed gives 0; to count how
    much a model's score moves with its seed, pass that spread (about ``sqrt(2)`` times the
    standard deviation of its score over seeds)."""
    from mlinfra_kit.data.projects import time_split
    from mlinfra_kit.progress import bar

    if metric not in ("accuracy", "macro_f1", "weighted_f1"):
        raise ValueError(f"metric must be accuracy, macro_f1 or weighted_f1, got {metric!r}")
    if kind == "stratified":
        splits = [_split_by_ids(projects, f) for f in stratified_folds(projects, folds, seed)]
    elif kind == "time":
        splits = [time_split(projects, holdout_fraction)]
    else:
        raise ValueError(f"kind must be 'stratified' or 'time', got {kind!r}")
    rows = []
    for k, (train, test) in enumerate(bar(splits, show=progress, desc=f"{kind} folds")):
        scores = [
            getattr(fit(train).evaluate(test.texts, test.tags), metric) for fit in (fit_a, fit_b)
        ]
        rows.append(
            {"fold": k, "train": len(train), "test": len(test), "a": scores[0], "b": scores[1]}
        )
    comparison = paired(
        [r["a"] for r in rows],
        [r["b"] for r in rows],
        names=names,
        kind="difference",
        confidence=0.95,
        noise=noise,
        over="folds",
    )
    return CrossValidation(names, metric, rows, comparison)
