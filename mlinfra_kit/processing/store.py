"""The online feature store: the latest features per user, with the time they describe.

SQLite (WAL) by default, Redis for a store shared by many readers; both behind the same
three methods (``put_many``, ``get``, ``count``). A batch refresh writes every user in one
transaction (a MULTI/EXEC pipeline on Redis), so a reader sees either the old refresh or
the new one, never half of each.

Examples
--------
>>> import tempfile, os
>>> store = FeatureStore(os.path.join(tempfile.mkdtemp(), "f.db"))
>>> store.put_many({"u1": {"clicks_300s": 2}}, as_of=120.0)
1
>>> store.get("u1")
({'clicks_300s': 2}, 120.0)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlinfra_kit.services import open_sqlite


class FeatureStore:
    """SQLite: one row per user, upserted."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(
            self.path,
            "CREATE TABLE IF NOT EXISTS features (user_id TEXT"
            " PRIMARY KEY, features TEXT NOT NULL, as_of REAL NOT NULL)",
        )

    def put_many(self, features: Mapping[str, Mapping[str, Any]], as_of: float) -> int:
        """Upsert each user's features as of event time ``as_of``, in one transaction."""
        blobs, as_of = _check_features(features, as_of)
        rows = [(u, blob, as_of) for u, blob in blobs]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO features VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                " features=excluded.features, as_of=excluded.as_of",
                rows,
            )
        return len(rows)

    def get(self, user_id: str) -> tuple[dict[str, Any], float] | None:
        """``(features, as_of)`` for ``user_id``, or None for a user never seen."""
        with self._lock:
            row = self._db.execute(
                "SELECT features, as_of FROM features WHERE user_id = ?", (str(user_id),)
            ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_features(features: Mapping[str, Mapping[str, Any]], as_of: float):
    if not isinstance(features, Mapping):
        raise TypeError(f"features must map user id -> features, got {type(features).__name__}")
    as_of = float(as_of)
    if as_of != as_of:
        raise ValueError("as_of must be a number of seconds of event time, got NaN")
    return [(str(u), json.dumps(dict(f))) for u, f in features.items()], as_of


class RedisFeatureStore:
    """Redis: one hash per user (``features`` as JSON, ``as_of``) and a set of the users;
    ``RedisFeatureStore("redis://127.0.0.1:6379/0")`` against a running server."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", namespace: str = "mlinfra"):
        import redis

        self.url, self.namespace = url, namespace
        self._redis = redis.Redis.from_url(url)

    def _key(self, user_id: str) -> str:
        return f"{self.namespace}:features:{user_id}"

    def put_many(self, features: Mapping[str, Mapping[str, Any]], as_of: float) -> int:
        rows, as_of = _check_features(features, as_of)
        if not rows:
            return 0
        pipe = self._redis.pipeline(transaction=True)
        for user, blob in rows:
            pipe.hset(self._key(user), mapping={"features": blob, "as_of": as_of})
        pipe.sadd(f"{self.namespace}:feature-users", *(u for u, _ in rows))
        pipe.execute()
        return len(rows)

    def get(self, user_id: str) -> tuple[dict[str, Any], float] | None:
        raw = self._redis.hgetall(self._key(str(user_id)))
        return (json.loads(raw[b"features"]), float(raw[b"as_of"])) if raw else None

    def count(self) -> int:
        return self._redis.scard(f"{self.namespace}:feature-users")

    def clear(self) -> None:
        """Delete this namespace's features (for experiments that reuse one server)."""
        users = self._redis.smembers(f"{self.namespace}:feature-users")
        keys = [self._key(u.decode()) for u in users]
        self._redis.delete(f"{self.namespace}:feature-users", *keys)

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> RedisFeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_feature_store(
    url: str | os.PathLike, namespace: str = "mlinfra"
) -> FeatureStore | RedisFeatureStore:
    """``redis://HOST:PORT/DB`` or a SQLite path (``sqlite:PATH`` or ``*.db``)."""
    text = str(url)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisFeatureStore(text, namespace)
    path = text.removeprefix("sqlite:")
    if not path or not (text.startswith("sqlite:") or path.endswith((".db", ".sqlite"))):
        raise ValueError(
            f"unknown feature store {text!r}: use sqlite:PATH, a .db path or redis://HOST:PORT/DB"
        )
    return FeatureStore(path)
