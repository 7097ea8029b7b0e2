"""The online feature store: the latest features per user, with the time they describe.

SQLite (WAL) by default. A batch refresh writes every user in one transaction, so a
reader sees either the old refresh or the new one, never half of each.

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
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, "CREATE TABLE IF NOT EXISTS features (user_id TEXT"
                               " PRIMARY KEY, features TEXT NOT NULL, as_of REAL NOT NULL)")

    def put_many(self, features: Mapping[str, Mapping[str, Any]], as_of: float) -> int:
        """Upsert each user's features as of event time ``as_of``, in one transaction."""
        rows = [(str(u), json.dumps(dict(f)), float(as_of)) for u, f in features.items()]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO features VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                " features=excluded.features, as_of=excluded.as_of", rows)
        return len(rows)

    def get(self, user_id: str) -> tuple[dict[str, Any], float] | None:
        """``(features, as_of)`` for ``user_id``, or None for a user never seen."""
        with self._lock:
            row = self._db.execute("SELECT features, as_of FROM features WHERE user_id = ?",
                                   (str(user_id),)).fetchone()
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
