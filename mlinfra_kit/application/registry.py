"""A model registry on disk: numbered versions, their evaluations, and which one serves.

::

    root/
      registry.json     {"production": "v1", "versions": {"v1": {...}, "v2": {...}}}
      v1/               a TagClassifier artifact (weights.pt + metadata.json)
      v2/

``registry.json`` is replaced whole (write, then rename), so a crash never leaves it half
written, and it names a version only after that version's artifact is in place.

Examples
--------
>>> import tempfile
>>> registry = ModelRegistry(tempfile.mkdtemp())
>>> registry.production is None, registry.versions()
(True, {})
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """Model versions on disk (``v1``, ``v2``, ... each a saved artifact with its metrics)
    and a separate, atomically written pointer to the one in production: registering a
    version is not deploying it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def _index_path(self) -> Path:
        return self.root / "registry.json"

    def _read(self) -> dict[str, Any]:
        if not self._index_path.is_file():
            return {"production": None, "versions": {}}
        return json.loads(self._index_path.read_text(encoding="utf-8"))

    def _write(self, index: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(index, indent=2), encoding="utf-8")
        os.replace(tmp, self._index_path)

    def versions(self) -> dict[str, dict[str, Any]]:
        """Every registered version with its metrics, notes and registration time."""
        return self._read()["versions"]

    @property
    def production(self) -> str | None:
        return self._read()["production"]

    def register(self, model: Any, metrics: dict[str, float], notes: str = "") -> str:
        """Save ``model`` as the next version (``v1``, ``v2``…) and return its name."""
        index = self._read()
        version = f"v{len(index['versions']) + 1}"
        model.save(self.root / version, version=version, metrics=metrics)
        index["versions"][version] = {
            "metrics": dict(metrics),
            "notes": notes,
            "registered_at": time.time(),
        }
        self._write(index)
        return version

    def path(self, version: str) -> Path:
        if version not in self.versions():
            raise ValueError(f"unknown version {version!r}; registered: {list(self.versions())}")
        return self.root / version

    def promote(self, version: str) -> None:
        """Make ``version`` the one in production."""
        self.path(version)  # validates
        index = self._read()
        index["production"] = version
        self._write(index)
