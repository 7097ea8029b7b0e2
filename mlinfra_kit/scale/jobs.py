"""Batch predictions and batch features as Ray Data jobs, same results as the kit's own.

Examples
--------
A Ray Data job is a plan over blocks; nothing runs until the results are consumed, and the
same plan runs on a laptop or a cluster::

    with ray_cluster(num_cpus=2):
        report = ray_predict_into_store("model/", ids, texts, store, workers=2)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import DEFAULT_WINDOWS, compute_features
from mlinfra_kit.scale.cluster import require_ray
from mlinfra_kit.serving.batch import BatchJobReport
from mlinfra_kit.serving.store import PredictionStore, StoredPrediction


class _Predictor:
    """One per actor: the model loads once, then predicts batch after batch."""

    def __init__(self, model_path: str, threads: int = 1):
        import torch

        from mlinfra_kit.models import TagClassifier

        torch.set_num_threads(threads)
        self.model = TagClassifier.load(model_path)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        predictions = self.model.predict([str(t) for t in batch["text"]])
        return {
            "entity_id": batch["entity_id"],
            "tag": [p.tag for p in predictions],
            "probabilities": [json.dumps(p.probabilities) for p in predictions],
            "version": [self.model.version] * len(predictions),
        }


def ray_predict_into_store(
    model_path: str,
    entity_ids: Sequence[Any],
    texts: Sequence[str],
    store: PredictionStore,
    workers: int = 1,
    batch_size: int = 256,
) -> BatchJobReport:
    """Predict ``texts`` on an actor pool of ``workers`` and write every prediction to
    ``store`` under ``entity_ids``, one transaction per output partition. Needs a
    connected Ray (see :func:`ray_cluster`)."""
    ray = require_ray()
    if len(entity_ids) != len(texts):
        raise ValueError(
            f"entity_ids and texts differ in length: {len(entity_ids)} ids, {len(texts)} texts"
        )
    if workers < 1 or batch_size < 1:
        raise ValueError("workers and batch_size must be at least 1")
    tic = time.perf_counter()
    items = [{"entity_id": str(e), "text": t} for e, t in zip(entity_ids, texts, strict=True)]
    predicted = ray.data.from_items(items).map_batches(
        _Predictor,
        fn_constructor_args=(str(model_path),),
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        batch_format="numpy",
    )
    written = batches = 0
    version = ""
    for batch in predicted.iter_batches(batch_size=batch_size, batch_format="numpy"):
        now = time.time()
        version = str(batch["version"][0])
        written += store.put_many(
            StoredPrediction(str(e), str(v), str(t), json.loads(p), now)
            for e, t, p, v in zip(
                batch["entity_id"],
                batch["tag"],
                batch["probabilities"],
                batch["version"],
                strict=True,
            )
        )
        batches += 1
    return BatchJobReport(version, len(items), 0, written, batches, time.perf_counter() - tic)


def _features_of_group(windows: Sequence[float], at: float):
    def apply(group: dict[str, Any]) -> dict[str, Any]:
        events = [
            Event(str(i), str(u), str(c), str(k), float(t))
            for i, u, c, k, t in zip(
                group["event_id"],
                group["user_id"],
                group["category"],
                group["kind"],
                group["event_time"],
                strict=True,
            )
        ]
        features = compute_features(events, at, windows)
        return {"user_id": [events[0].user_id], "features": [json.dumps(features)]}

    return apply


def ray_batch_features(
    events: Iterable[Event], at: float, windows: Sequence[float] = DEFAULT_WINDOWS
) -> dict[str, dict[str, Any]]:
    """Every user's features as of ``at``: :func:`~mlinfra_kit.processing.batch_features`
    as a Ray Data groupby on ``user_id`` (one group per user, features computed with the
    same definition)."""
    ray = require_ray()
    rows = [asdict(e) for e in events if e.event_time <= at]
    if not rows:
        return {}
    # One shuffle partition per CPU: the default (hundreds) is tuned for big clusters, and
    # on a laptop its scheduling costs more than the work.
    partitions = max(1, int(ray.cluster_resources().get("CPU", 1)))
    grouped = (
        ray.data.from_items(rows)
        .groupby("user_id", num_partitions=partitions)
        .map_groups(_features_of_group(tuple(windows), float(at)), batch_format="numpy")
    )
    return {str(r["user_id"]): json.loads(r["features"]) for r in grouped.iter_rows()}
