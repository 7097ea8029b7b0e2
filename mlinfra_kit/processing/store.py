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
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from mlinfra_kit.services import open_sqlite, parse_store_url

__all__ = ["BaseFeatureStore", "FeatureStore", "RedisFeatureStore", "open_feature_store"]


class BaseFeatureStore(ABC):
    """What every feature store offers: write a refresh (``put_many``), read a user's
    latest features (``get``), ``count`` the users, ``clear`` them, ``close``."""

    @abstractmethod
    def put_many(self, features: Mapping[str, Mapping[str, Any]], as_of: float) -> int:
        """Upsert each user's features as of event time ``as_of``, all or nothing."""

    @abstractmethod
    def get(self, user_id: str) -> tuple[dict[str, Any], float] | None:
        """``(features, as_of)`` for ``user_id``, or None for a user never seen."""

    @abstractmethod
    def count(self) -> int:
        """How many users have features."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every user's features (for experiments that reuse one store)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FeatureStore(BaseFeatureStore):
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

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM features")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _check_features(features: Mapping[str, Mapping[str, Any]], as_of: float):
    if not isinstance(features, Mapping):
        raise TypeError(f"features must map user id -> features, got {type(features).__name__}")
    as_of = float(as_of)
    if as_of != as_of:
        raise ValueError("as_of must be a number of seconds of event time, got NaN")
    return [(str(u), json.dumps(dict(f))) for u, f in features.items()], as_of


class RedisFeatureStore(BaseFeatureStore):
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


def open_feature_store(url: str | os.PathLike, namespace: str = "mlinfra") -> BaseFeatureStore:
    """The feature store at ``url``: ``sqlite:PATH`` (or a path ending in ``.db``) or
    ``redis://HOST:PORT/DB`` (see :func:`~mlinfra_kit.services.parse_store_url`)."""
    kind, where = parse_store_url(url, "feature store")
    return RedisFeatureStore(where, namespace) if kind == "redis" else FeatureStore(where)
