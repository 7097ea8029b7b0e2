"""Serving: batch predictions into a store vs real-time HTTP serving with dynamic batching.

- :func:`predict_into_store` precomputes predictions for a finite set of entities into a
  :class:`PredictionStore` (:class:`SQLiteStore` or :class:`RedisStore`), resumably;
- :func:`create_app` is the FastAPI server (``mlinfra serve``), configured by one
  :class:`ServerConfig`, with a
  :class:`DynamicBatcher` and an :class:`LRUCache` in front of the model;
- :func:`run_server` starts it as a real process on loopback, :func:`run_load` loads it
  over real HTTP from another process.

Importing this package does not import torch, FastAPI or the HTTP clients.
"""

from typing import Any

from mlinfra_kit.serving.batch import BatchJobReport, compare_with_live, predict_into_store
from mlinfra_kit.serving.batching import DynamicBatcher
from mlinfra_kit.serving.cache import LRUCache
from mlinfra_kit.serving.config import ServerConfig
from mlinfra_kit.serving.process import RunningServer, run_server, run_trivial_server
from mlinfra_kit.serving.store import (
    PredictionStore,
    RedisStore,
    SQLiteStore,
    StoredPrediction,
    open_store,
)
from mlinfra_kit.serving.swap import SwapReport, swap_under_load


def create_app(config: ServerConfig) -> Any:
    """The FastAPI app for a :class:`~mlinfra_kit.serving.config.ServerConfig` (lazy import)."""
    from mlinfra_kit.serving.app import create_app as _create_app

    return _create_app(config)


__all__ = [
    "BatchJobReport",
    "DynamicBatcher",
    "LRUCache",
    "PredictionStore",
    "RedisStore",
    "RunningServer",
    "SQLiteStore",
    "ServerConfig",
    "StoredPrediction",
    "SwapReport",
    "compare_with_live",
    "create_app",
    "open_store",
    "predict_into_store",
    "run_server",
    "run_trivial_server",
    "swap_under_load",
]
