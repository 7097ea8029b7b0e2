"""The tag classifier's artifact on disk: a folder of ``weights.pt`` (the network's
state, read back with ``weights_only=True``) and ``metadata.json`` (format, version, tags,
settings, vocabulary, metrics, creation time), written beside and renamed into place.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp()) / "model"
>>> meta = write_artifact(folder, {"w": torch.zeros(2)}, version="v1", tags=["a", "b"],
...                       params={}, vocabulary={})
>>> read_artifact(folder)[0]["version"], read_artifact(folder)[1]["w"].tolist()
('v1', [0.0, 0.0])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from mlinfra_kit import __version__
from mlinfra_kit.artifacts import METADATA_FILE, WEIGHTS_FILE, is_artifact

__all__ = ["ARTIFACT_FORMAT", "FORMAT_VERSION", "read_artifact", "write_artifact"]

ARTIFACT_FORMAT = "mlinfra-kit.tag-classifier"
#: 2: TF-IDF-weighted word and character n-grams (1 was word n-grams only, unweighted).
FORMAT_VERSION = 2


def write_artifact(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    *,
    version: str | None,
    tags: list[str],
    params: dict[str, Any],
    vocabulary: dict[str, Any],
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write the artifact folder ``path`` and return its metadata. ``version`` defaults to
    a short hash of the weights, so two identical models get the same version; a crash
    never leaves a half-written folder (it is written beside and renamed into place)."""
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in state.items()}, buffer)
    weights = buffer.getvalue()
    meta = {
        "format": ARTIFACT_FORMAT,
        "format_version": FORMAT_VERSION,
        "version": str(version)
        if version is not None
        else hashlib.sha256(weights).hexdigest()[:12],
        "tags": tags,
        "params": params,
        "vocabulary": vocabulary,
        "metrics": dict(metrics or {}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mlinfra_kit": __version__,
        "torch": torch.__version__,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        (staging / WEIGHTS_FILE).write_bytes(weights)
        (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def read_artifact(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An artifact's metadata and weights (on the CPU), after checking it is one of this
    format and version; no code from the file is run (``weights_only=True``)."""
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not is_artifact(path):
        raise FileNotFoundError(
            f"{path} is not a model artifact: expected {METADATA_FILE} and {WEIGHTS_FILE} inside"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path} is not valid JSON: {err}") from None
    if meta.get("format") != ARTIFACT_FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a {ARTIFACT_FORMAT} artifact of format_version "
            f"{FORMAT_VERSION} (found format={meta.get('format')!r}, "
            f"version={meta.get('format_version')!r}); artifacts of format_version 1 "
            "(word n-grams only) are not read by this version: train and save it again"
        )
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    return meta, state
