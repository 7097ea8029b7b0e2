"""Prediction stores: where batch serving keeps precomputed predictions.

One small interface, two backends: :class:`SQLiteStore` (embedded, the default) and
:class:`RedisStore` (a real redis-server). Rows are keyed by entity id *and* model version,
so a new model's predictions can be written beside the old ones and a reader can tell how
old, and from which model, an answer is. Writes of a batch are atomic: a crash leaves
either the whole batch or none of it.

Examples
--------
>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> with open_store(f"sqlite:{os.path.join(folder, 'p.db')}") as store:
...     _ = store.put_many([StoredPrediction("42", "v1", "mlops", {"mlops": 0.9, "other": 0.1})])
...     store.get("42").tag, store.count("v1"), store.missing(["42", "43"], "v1")
('mlops', 1, ['43'])
"""

from __future__ import annotations

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlinfra_kit.services import open_sqlite, parse_store_url, redis_text

__all__ = ["PredictionStore", "RedisStore", "SQLiteStore", "StoredPrediction", "open_store"]


@dataclass(frozen=True)
class StoredPrediction:
    """One precomputed prediction; ``created_at`` is Unix time in seconds."""

    entity_id: str
    model_version: str
    tag: str
    probabilities: dict[str, float]
    created_at: float = field(default_factory=time.time)

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the prediction was made: how stale the answer may be."""
        return (time.time() if now is None else now) - self.created_at

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredPrediction:
        return cls(**json.loads(text))


def _check_rows(rows: Iterable[StoredPrediction]) -> list[StoredPrediction]:
    rows = list(rows)
    for row in rows:
        if not isinstance(row, StoredPrediction):
            raise TypeError(f"put_many takes StoredPrediction rows, got {type(row).__name__}")
        if not row.entity_id or not row.model_version:
            raise ValueError(f"a stored prediction needs an entity_id and a model_version: {row}")
    return rows


class PredictionStore(ABC):
    """Keyed by (entity id, model version). Use as a context manager to close it."""

    url: str

    @abstractmethod
    def put_many(self, rows: Iterable[StoredPrediction]) -> int:
        """Insert or replace ``rows`` atomically; return how many were written."""

    @abstractmethod
    def get(self, entity_id: str, model_version: str | None = None) -> StoredPrediction | None:
        """The prediction for ``entity_id`` from ``model_version``, or the newest one of
        any version when ``model_version`` is None; ``None`` when there is none."""

    @abstractmethod
    def missing(self, entity_ids: Sequence[str], model_version: str) -> list[str]:
        """The ids, in the given order, with no prediction from ``model_version`` yet."""

    @abstractmethod
    def count(self, model_version: str | None = None) -> int:
        """How many predictions are stored (for one version, or in all)."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every prediction of this store."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class SQLiteStore(PredictionStore):
    """SQLite in WAL mode: readers never wait for the batch job's writes.

    One connection, shared by the threads of a server under a lock (SQLite serialises
    writers anyway); each :meth:`put_many` is one transaction.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.url = f"sqlite:{self.path}"
        self._lock = threading.Lock()
        self._db = open_sqlite(
            self.path,
            "CREATE TABLE IF NOT EXISTS predictions ("
            " entity_id TEXT NOT NULL, model_version TEXT NOT NULL, tag TEXT NOT NULL,"
            " probabilities TEXT NOT NULL, created_at REAL NOT NULL,"
            " PRIMARY KEY (entity_id, model_version))",
        )

    def put_many(self, rows: Iterable[StoredPrediction]) -> int:
        rows = _check_rows(rows)
        values = [
            (r.entity_id, r.model_version, r.tag, json.dumps(r.probabilities), r.created_at)
            for r in rows
        ]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO predictions VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (entity_id, model_version) DO UPDATE SET tag=excluded.tag,"
                " probabilities=excluded.probabilities, created_at=excluded.created_at",
                values,
            )
        return len(values)

    def get(self, entity_id: str, model_version: str | None = None) -> StoredPrediction | None:
        query = (
            "SELECT entity_id, model_version, tag, probabilities, created_at "
            "FROM predictions WHERE entity_id = ?"
        )
        args: tuple[Any, ...] = (str(entity_id),)
        if model_version is not None:
            query += " AND model_version = ?"
            args += (model_version,)
        with self._lock:
            row = self._db.execute(query + " ORDER BY created_at DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return StoredPrediction(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def missing(self, entity_ids: Sequence[str], model_version: str) -> list[str]:
        with self._lock:
            present = {
                r[0]
                for r in self._db.execute(
                    "SELECT entity_id FROM predictions WHERE model_version = ?", (model_version,)
                )
            }
        return [str(e) for e in entity_ids if str(e) not in present]

    def count(self, model_version: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM predictions"
        args: tuple[str, ...] = ()
        if model_version is not None:
            query, args = query + " WHERE model_version = ?", (model_version,)
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM predictions")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisStore(PredictionStore):
    """Redis: one hash per entity (field = model version, value = the row as JSON) and one
    set of entity ids per version. A batch is one MULTI/EXEC pipeline: one round trip,
    applied atomically."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", namespace: str = "mlinfra"):
        import redis

        self.url = url
        self.namespace = namespace
        self._redis = redis.Redis.from_url(url)

    def _key(self, entity_id: str) -> str:
        return f"{self.namespace}:pred:{entity_id}"

    def _version_key(self, model_version: str) -> str:
        return f"{self.namespace}:version:{model_version}"

    def put_many(self, rows: Iterable[StoredPrediction]) -> int:
        rows = _check_rows(rows)
        if not rows:
            return 0
        pipe = self._redis.pipeline(transaction=True)
        for r in rows:
            pipe.hset(self._key(r.entity_id), r.model_version, r.to_json())
            pipe.sadd(self._version_key(r.model_version), r.entity_id)
        pipe.sadd(f"{self.namespace}:versions", *{r.model_version for r in rows})
        pipe.execute()
        return len(rows)

    def get(self, entity_id: str, model_version: str | None = None) -> StoredPrediction | None:
        key = self._key(str(entity_id))
        if model_version is not None:
            raw = self._redis.hget(key, model_version)
            return StoredPrediction.from_json(raw) if raw else None
        rows = [StoredPrediction.from_json(v) for v in self._redis.hvals(key)]
        return max(rows, key=lambda r: r.created_at) if rows else None

    def missing(self, entity_ids: Sequence[str], model_version: str) -> list[str]:
        ids = [str(e) for e in entity_ids]
        if not ids:
            return []
        flags = self._redis.smismember(self._version_key(model_version), ids)
        return [e for e, present in zip(ids, flags, strict=True) if not present]

    def count(self, model_version: str | None = None) -> int:
        if model_version is not None:
            return int(self._redis.scard(self._version_key(model_version)))
        versions = [redis_text(v) for v in self._redis.smembers(f"{self.namespace}:versions")]
        return sum(int(self._redis.scard(self._version_key(v))) for v in versions)

    def clear(self) -> None:
        keys = list(self._redis.scan_iter(match=f"{self.namespace}:*", count=1000))
        for i in range(0, len(keys), 1000):
            self._redis.delete(*keys[i : i + 1000])

    def close(self) -> None:
        self._redis.close()


def open_store(url: str | os.PathLike[str]) -> PredictionStore:
    """The prediction store at ``url``: ``sqlite:PATH`` (or a path ending in ``.db``) or
    ``redis://HOST:PORT/DB`` (see :func:`~mlinfra_kit.services.parse_store_url`)."""
    kind, where = parse_store_url(url, "prediction store")
    return RedisStore(where) if kind == "redis" else SQLiteStore(where)
