"""Batch serving: predict every entity of a finite set ahead of time and store the answers.

The job is resumable: it asks the store which entities still lack a prediction from this
model version and predicts only those, one atomic write per batch. Killed halfway (even
with SIGKILL), the store holds whole batches only, and a rerun completes what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlinfra_kit.progress import bar as progress_bar
from mlinfra_kit.serving.store import PredictionStore, StoredPrediction

__all__ = ["BatchJobReport", "compare_with_live", "predict_into_store"]


@dataclass(frozen=True)
class BatchJobReport:
    """What a run of :func:`predict_into_store` did."""

    model_version: str
    total: int
    skipped: int  # already in the store from an earlier (perhaps interrupted) run
    written: int
    batches: int
    seconds: float

    @property
    def predictions_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else float("nan")


def predict_into_store(
    model: Any,
    entity_ids: Sequence[Any],
    texts: Sequence[str],
    store: PredictionStore,
    *,
    batch_size: int = 256,
    model_version: str | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> BatchJobReport:
    """Predict ``texts`` with ``model`` and write them to ``store`` under ``entity_ids``.

    ``model`` needs ``predict(texts)`` returning objects with ``tag`` and ``probabilities``
    (a :class:`~mlinfra_kit.models.TagClassifier`). ``model_version`` defaults to
    ``model.version`` (set when the model was saved or loaded). ``on_batch(written)`` is
    called after each batch is stored, e.g. to report progress elsewhere.
    """
    if len(entity_ids) != len(texts):
        raise ValueError(
            f"entity_ids and texts differ in length: {len(entity_ids)} ids, {len(texts)} texts"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    version = model_version or getattr(model, "version", None)
    if not version:
        raise ValueError(
            "the model has no version: save() or load() it first, or pass model_version="
        )
    ids = [str(e) for e in entity_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("entity_ids must be unique")
    text_of = dict(zip(ids, texts, strict=True))

    start = time.perf_counter()
    todo = store.missing(ids, version)
    written = batches = 0
    with progress_bar(
        total=len(ids),
        initial=len(ids) - len(todo),
        desc=f"batch predict {version}",
        unit="entity",
        show=progress,
    ) as bar:
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            predictions = model.predict([text_of[e] for e in chunk])
            now = time.time()
            written += store.put_many(
                StoredPrediction(e, version, p.tag, p.probabilities, now)
                for e, p in zip(chunk, predictions, strict=True)
            )
            batches += 1
            bar.update(len(chunk))
            if on_batch is not None:
                on_batch(written)
    return BatchJobReport(
        version, len(ids), len(ids) - len(todo), written, batches, time.perf_counter() - start
    )


def compare_with_live(
    model: Any, entity_ids: Sequence[Any], texts: Sequence[str], store: PredictionStore
) -> list[dict[str, Any]]:
    """What batch serving answers vs what ``model`` says now, per entity.

    One row per entity: the stored tag, its model version and age, the live tag, and
    whether they agree. A stored answer goes stale when the model changes *or* the input
    changes after the batch job ran; this shows how many answers that affects.
    """
    if len(entity_ids) != len(texts):
        raise ValueError(
            f"entity_ids and texts differ in length: {len(entity_ids)} ids, {len(texts)} texts"
        )
    live = model.predict(list(texts))
    now = time.time()
    rows = []
    for entity, prediction in zip(entity_ids, live, strict=True):
        stored = store.get(str(entity))
        rows.append(
            {
                "id": str(entity),
                "stored_tag": stored.tag if stored else None,
                "stored_version": stored.model_version if stored else None,
                "stored_age_s": stored.age_s(now) if stored else None,
                "live_tag": prediction.tag,
                "live_version": getattr(model, "version", None),
                "agrees": stored is not None and stored.tag == prediction.tag,
            }
        )
    return rows
