"""Batch predictions and batch features as Ray Data jobs, same results as the kit's own.

Two ways to run batch predictions on Ray:

- :func:`ray_predict_into_store`, a one-off Ray Data job: each run starts its own actor pool
  (every actor imports torch and loads the model), then streams blocks through it;
- :class:`RayPredictorPool`, a warm pool of actors kept across jobs, as a long-lived service
  would: the start-up is paid once, and each job pays only its per-block and per-item costs.

Examples
--------
A Ray Data job is a plan over blocks; nothing runs until the results are consumed, and the
same plan runs on a laptop or a cluster::

    with ray_cluster(num_cpus=2):
        report = ray_predict_into_store("model/", ids, texts, store, workers=2)
        with RayPredictorPool("model/", workers=2) as pool:
            report = pool.predict_into_store(ids, texts, store)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from mlinfra_kit.processing.events import Event
from mlinfra_kit.processing.features import DEFAULT_WINDOWS, compute_features
from mlinfra_kit.scale.cluster import RAY_NOISE, require_ray
from mlinfra_kit.services import drop_output_lines
from mlinfra_kit.serving.batch import BatchJobReport
from mlinfra_kit.serving.store import PredictionStore, StoredPrediction

__all__ = ["RayPredictorPool", "ray_batch_features", "ray_predict_into_store"]


class _Predictor:
    """One per actor: the model loads once, then predicts batch after batch."""

    MODEL_PATH = ""  # set on a subclass by _predictor_for: no constructor arguments to ship

    def __init__(self, threads: int = 1):
        import torch

        from mlinfra_kit.models import TagClassifier

        torch.set_num_threads(threads)
        self.model = TagClassifier.load(self.MODEL_PATH)

    def version(self) -> str | None:
        return self.model.version

    def predict(self, batch: dict[str, Any]) -> dict[str, Any]:
        return self(batch)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        predictions = self.model.predict([str(t) for t in batch["text"]])
        return {
            "entity_id": batch["entity_id"],
            "tag": [p.tag for p in predictions],
            "probabilities": [json.dumps(p.probabilities) for p in predictions],
            "version": [self.model.version] * len(predictions),
        }


def _predictor_for(model_path: str) -> type[_Predictor]:
    # The path travels inside the class, not as constructor arguments in the object store
    # (which Ray flags, on stderr, for actors it may restart).
    return type("Predictor", (_Predictor,), {"MODEL_PATH": str(model_path)})


def _write(store: PredictionStore, batch: dict[str, Any]) -> int:
    now = time.time()
    return store.put_many(
        StoredPrediction(str(e), str(v), str(t), json.loads(p), now)
        for e, t, p, v in zip(
            batch["entity_id"], batch["tag"], batch["probabilities"], batch["version"], strict=True
        )
    )


def _check_job(entity_ids: Sequence[Any], texts: Sequence[str], batch_size: int) -> None:
    if len(entity_ids) != len(texts):
        raise ValueError(
            f"entity_ids and texts differ in length: {len(entity_ids)} ids, {len(texts)} texts"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


class RayPredictorPool:
    """``workers`` Ray actors, each holding the model, kept warm across jobs.

    Start-up (actors importing torch and loading the model) happens once, in the
    constructor, and is timed in ``startup_s``; :meth:`predict_into_store` then sends
    blocks of ``batch_size`` texts to whichever actor is free and writes each answer block
    to the store in one transaction. Close it (or use ``with``) to free the actors' CPUs.
    """

    def __init__(self, model_path: str, workers: int = 1, threads: int = 1):
        ray = require_ray()
        from ray.util import ActorPool

        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        tic = time.perf_counter()
        actor = ray.remote(num_cpus=1)(_predictor_for(model_path))
        self._actors = [actor.remote(threads) for _ in range(workers)]
        versions = ray.get([a.version.remote() for a in self._actors])
        self.version = versions[0]
        self.workers = workers
        self._pool: ActorPool | None = ActorPool(self._actors)
        self.startup_s = time.perf_counter() - tic

    def predict_into_store(
        self,
        entity_ids: Sequence[Any],
        texts: Sequence[str],
        store: PredictionStore,
        batch_size: int = 256,
        actors: int | None = None,
    ) -> BatchJobReport:
        """Predict ``texts`` on the warm actors (the first ``actors`` of them; default:
        all) and write them to ``store``. Fewer actors of the same warm pool is how to
        compare pool sizes on a machine that cannot hold two pools at once."""
        from ray.util import ActorPool

        _check_job(entity_ids, texts, batch_size)
        if self._pool is None:
            raise RuntimeError("the pool is closed: create a new RayPredictorPool")
        if actors is not None and not 1 <= actors <= self.workers:
            raise ValueError(
                f"actors must be between 1 and the pool's {self.workers}, got {actors}"
            )
        pool = self._pool if actors is None else ActorPool(self._actors[:actors])
        tic = time.perf_counter()
        blocks = [
            {
                "entity_id": [str(e) for e in entity_ids[i : i + batch_size]],
                "text": list(texts[i : i + batch_size]),
            }
            for i in range(0, len(texts), batch_size)
        ]
        written = 0
        for answer in pool.map_unordered(lambda a, b: a.predict.remote(b), blocks):
            written += _write(store, answer)
        seconds = time.perf_counter() - tic
        return BatchJobReport(self.version, len(texts), 0, written, len(blocks), seconds)

    def close(self) -> None:
        """Stop the actors (idempotent)."""
        if self._pool is None:
            return
        ray = require_ray()
        for a in self._actors:
            ray.kill(a)
        self._pool, self._actors = None, []

    def __enter__(self) -> RayPredictorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    _check_job(entity_ids, texts, batch_size)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tic = time.perf_counter()
    items = [{"entity_id": str(e), "text": t} for e, t in zip(entity_ids, texts, strict=True)]
    predicted = ray.data.from_items(items).map_batches(
        _predictor_for(model_path),
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        batch_format="numpy",
    )
    written = batches = 0
    version = ""
    with drop_output_lines(RAY_NOISE):
        for batch in predicted.iter_batches(batch_size=batch_size, batch_format="numpy"):
            version = str(batch["version"][0])
            written += _write(store, batch)
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
